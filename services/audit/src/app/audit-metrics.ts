/**
 * The audit writer's metrics: entries appended (by source service and outcome), the tree size, whether this
 * replica holds the writer lease, and signed tree heads by witness and outcome. Labels are service names and
 * codes only.
 */
import { sealpostMetrics, type BoundCounter } from '@sealpost/telemetry';

export type AppendOutcome = 'ok' | 'rejected';

export class AuditMetrics {
  private readonly m = sealpostMetrics('audit');
  private readonly appended = new Map<string, BoundCounter>();
  private readonly treeSize = this.m.gauge('sealpost_audit_tree_size').bind({});
  private readonly heads = this.m.counter('sealpost_audit_tree_heads_signed_total');

  constructor(private readonly leaseName: string) {}

  entries(source: string, outcome: AppendOutcome, count = 1): void {
    const key = `${source}\0${outcome}`;
    let counter = this.appended.get(key);
    if (counter === undefined) {
      counter = this.m.counter('sealpost_audit_appended_total').bind({ source, outcome });
      this.appended.set(key, counter);
    }
    counter.add(count);
  }

  size(treeSize: number): void {
    this.treeSize.record(treeSize);
  }

  leaseHeld(held: boolean): void {
    this.m.gauge('sealpost_lease_held').record(held ? 1 : 0, { lease: this.leaseName });
  }

  treeHead(witness: string, outcome: 'ok' | 'failed'): void {
    this.heads.add(1, { witness, outcome });
  }
}
