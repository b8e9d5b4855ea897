/**
 * Renders kustomize overlays for the deploy tests. The binary is the one scripts/k8s-check.sh installs;
 * when it is absent, CI fails and a local run skips with a printed line naming it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = resolve(__dirname, '../../..');

/** A rendered Kubernetes object; tests read it structurally. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered YAML is checked field by field
  [key: string]: any;
}

/** Where the kustomize binary is: `SEALPOST_TEST_KUSTOMIZE`, else the peers cache; undefined when absent. */
export function kustomizeBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env.SEALPOST_TEST_KUSTOMIZE,
    join(env.SEALPOST_PEERS_CACHE || join(homedir(), '.cache/sealpost-peers'), 'bin/kustomize'),
  ];
  return candidates.find((c): c is string => c !== undefined && c !== '' && existsSync(c));
}

const cache = new Map<string, K8sObject[]>();

/** `kustomize build k8s/<path>` parsed into objects (cached per path). Throws on a build error. */
export function render(path: string): K8sObject[] {
  const cached = cache.get(path);
  if (cached) return structuredClone(cached);
  const bin = kustomizeBinary();
  if (bin === undefined) throw new Error('kustomize is not installed: run `bash scripts/k8s-check.sh`');
  const text = execFileSync(bin, ['build', join(REPO_ROOT, 'k8s', path)], { encoding: 'utf8' });
  const objects = parseYamlDocuments(text) as K8sObject[];
  cache.set(path, objects);
  return structuredClone(objects);
}

/** Every document of a multi-document YAML text; throws on a syntax error. */
export function parseYamlDocuments(text: string): unknown[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]?.message ?? 'unknown'}`);
    return doc.toJS() as unknown;
  });
}

/**
 * `describe` when kustomize is available; otherwise a failing test under CI=true, or a skip with a printed
 * line naming what is missing. (Kept local and obvious: swap for a testkit helper if one covers tools.)
 */
export function describeWithKustomize(title: string, fn: () => void): void {
  if (kustomizeBinary() !== undefined) {
    describe(title, fn);
    return;
  }
  if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(title, () => {
      it('needs kustomize', () => {
        throw new Error('kustomize missing under CI=true: run `bash scripts/k8s-check.sh` (builds it)');
      });
    });
    return;
  }
  console.warn(`SKIP ${title}: kustomize is not installed (bash scripts/k8s-check.sh builds it)`);
  // Skipped only outside CI, with the line above naming what is missing; under CI=true it fails (above).
  describe.skip(title, fn);
}
