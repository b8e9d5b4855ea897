import { unknownFieldErrors, validateWithOpenApi } from './lib/k8s-schema';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, describeWithKustomize, parseYamlDocuments, render, type K8sObject } from './lib/render';

const TARGETS = ['base', 'overlays/dev', 'overlays/prod'] as const;

describeWithKustomize('Kubernetes OpenAPI schemas (offline, from the kubernetes-models package)', () => {
  it.each(TARGETS)('every object of %s satisfies its schema', (target) => {
    const objects = render(target);
    expect(objects.length).toBeGreaterThan(5);
    expect(objects.flatMap(validateWithOpenApi)).toEqual([]);
  });

  it.each(TARGETS)(
    'no object of %s has an unknown or mistyped field',
    (target) => {
      expect(unknownFieldErrors(render(target))).toEqual([]);
    },
    60_000,
  );

  const deployment = (): K8sObject => {
    const d = render('overlays/prod').find((o) => o.kind === 'Deployment');
    if (!d) throw new Error('no Deployment rendered');
    return d;
  };

  it('refuses a missing required field and a wrong type', () => {
    const d = deployment();
    delete d.spec.template.spec.containers[0].name;
    d.spec.template.spec.containers[0].ports[0].containerPort = 'grpc';
    const errors = validateWithOpenApi(d).join('\n');
    expect(errors).toContain('containers/0 must have required property name');
    expect(errors).toContain('containerPort must be integer');
  });

  it('refuses an enum value the API does not know', () => {
    const d = deployment();
    d.spec.strategy.type = 'BlueGreen';
    expect(validateWithOpenApi(d).join('\n')).toMatch(/strategy\/type must be equal to one of the allowed values/);
  });

  it('refuses an unknown kind', () => {
    const d = deployment();
    d.kind = 'Deploymnet';
    expect(validateWithOpenApi(d)).toEqual([expect.stringContaining('no schema for apps/v1 Deploymnet')]);
  });

  it('refuses a misspelt field, however deep (what the OpenAPI validators let through)', () => {
    const d = deployment();
    const sc = d.spec.template.spec.containers[0].securityContext;
    sc.readOnlyRootFileSystem = sc.readOnlyRootFilesystem;
    delete sc.readOnlyRootFilesystem;
    expect(validateWithOpenApi(d)).toEqual([]);
    const errors = unknownFieldErrors([d]).join('\n');
    expect(errors).toContain(`Deployment/${d.metadata.name}`);
    expect(errors).toMatch(/readOnlyRootFileSystem\W+ does not exist in type 'ISecurityContext'/);
  }, 60_000);
});

// Policies of services not deployed yet are not rendered by any overlay: validate the files themselves.
describe('k8s/components/network-policies/later (not referenced yet)', () => {
  const dir = join(REPO_ROOT, 'k8s/components/network-policies/later');
  const objects = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlDocuments(readFileSync(join(dir, f), 'utf8')) as K8sObject[]);

  it('are valid NetworkPolicies with no unknown field', () => {
    expect(objects.map((o) => o.metadata.name).sort()).toEqual(['anomaly', 'consent', 'dispatch', 'identity']);
    expect(objects.flatMap(validateWithOpenApi)).toEqual([]);
    expect(unknownFieldErrors(objects)).toEqual([]);
  }, 60_000);
});
