import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/render';

const DIR = join(REPO_ROOT, 'deploy/aws');
interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS?: string };
  Action: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}
const load = (f: string): { Statement: Statement[] } => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const CRYPTO = /^kms:(Encrypt|Decrypt|GenerateDataKey|ReEncrypt|Sign)/;

describe('deploy/aws policy templates', () => {
  it('are valid JSON policies', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) expect(load(f).Statement.length).toBeGreaterThan(0);
  });

  it.each(['kms-tenant-key-policy.json', 'kms-audit-signing-key-policy.json', 'kms-vault-receipt-key-policy.json'])(
    '%s separates key administrators from key users',
    (f) => {
      const st = load(f).Statement;
      const adminAllows = st.filter((s) => s.Effect === 'Allow' && s.Principal?.AWS?.endsWith('-kms-admin'));
      expect(adminAllows.length).toBeGreaterThan(0);
      for (const s of adminAllows) expect(actions(s).filter((a) => CRYPTO.test(a))).toEqual([]);
      expect(
        st.some(
          (s) =>
            s.Effect === 'Deny' && s.Principal?.AWS?.endsWith('-kms-admin') && actions(s).some((a) => CRYPTO.test(a)),
        ),
      ).toBe(true);
      // Users never administer: no policy, deletion or grant rights for the service roles.
      for (const s of st.filter(
        (x) => x.Effect === 'Allow' && /-(contact-vault|audit)$/.test(x.Principal?.AWS ?? ''),
      )) {
        expect(actions(s).filter((a) => /Put|Delete|Schedule|Create|Disable|Grant/.test(a))).toEqual([]);
      }
      // Nobody, not even the account root, holds kms:* on the key.
      expect(st.some((s) => s.Effect === 'Allow' && actions(s).includes('kms:*'))).toBe(false);
      const deletion = st.find((s) => actions(s).includes('kms:ScheduleKeyDeletion'));
      expect(deletion?.Condition?.NumericGreaterThanEquals?.['kms:ScheduleKeyDeletionPendingWindowInDays']).toBe('30');
    },
  );

  it('tenant keys are used only with that tenant in the encryption context', () => {
    const st = load('kms-tenant-key-policy.json').Statement;
    const use = st.filter((s) => s.Effect === 'Allow' && actions(s).some((a) => CRYPTO.test(a)));
    expect(use.length).toBe(1);
    for (const s of use) expect(s.Condition?.StringEquals?.['kms:EncryptionContext:tenant']).toBe('${TENANT_ID}');
    const deny = st.find((s) => s.Effect === 'Deny' && s.Principal?.AWS === '*');
    expect(deny?.Condition?.StringNotEquals?.['kms:EncryptionContext:tenant']).toBe('${TENANT_ID}');
  });

  it('the contact vault signs receipts only with its receipt key, ES256, and reads only its public key', () => {
    const st = load('iam-contact-vault.json').Statement as (Statement & { Resource: string })[];
    const signing = st.filter(
      (s) => s.Effect === 'Allow' && actions(s).some((a) => /^kms:(Sign|GetPublicKey)$/.test(a)),
    );
    expect(signing.flatMap(actions).sort()).toEqual(['kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign']);
    for (const s of signing)
      expect(s.Resource).toBe('arn:aws:kms:${REGION}:${ACCOUNT_ID}:key/${VAULT_RECEIPT_SIGNING_KEY_ID}');
    expect(
      signing.find((s) => actions(s).includes('kms:Sign'))?.Condition?.StringEquals?.['kms:SigningAlgorithm'],
    ).toBe('ECDSA_SHA_256');
  });

  it('IRSA trust binds a role to one service account', () => {
    const [s] = load('irsa-trust-policy.json').Statement;
    expect(s?.Condition?.StringEquals?.['${OIDC_PROVIDER}:sub']).toBe('system:serviceaccount:${NAMESPACE}:${SERVICE}');
    expect(s?.Condition?.StringEquals?.['${OIDC_PROVIDER}:aud']).toBe('sts.amazonaws.com');
  });
});
