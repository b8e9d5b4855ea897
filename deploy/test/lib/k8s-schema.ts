/**
 * Offline validation of rendered objects against the Kubernetes API schemas shipped in the npm package
 * `kubernetes-models` (4.5.1): no network, no schema download at run time.
 *
 * Two passes, because the package's compiled OpenAPI validators do not refuse unknown fields (the
 * Kubernetes OpenAPI v2 document has no `additionalProperties: false`):
 *  1. `validateWithOpenApi`: the compiled validators (required fields, types, enums, formats);
 *  2. `unknownFieldErrors`: the same package's TypeScript types, with the compiler's excess-property check
 *     over the objects written as literals, which refuses misspelt or unknown fields at any depth (what
 *     `kubeconform -strict` or the API server's strict field validation would refuse).
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { K8sObject } from './render';

/** Module of the package holding `apiVersion`'s models: `apps/v1` → `kubernetes-models/apps/v1`. */
function modulePath(apiVersion: string): string {
  return `kubernetes-models/${apiVersion}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** Validation errors of one object, `[]` when valid. Unknown kinds are an error, not a pass. */
export function validateWithOpenApi(o: K8sObject): string[] {
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module depends on the object
    mod = require(modulePath(o.apiVersion)) as Record<string, unknown>;
  } catch {
    return [`${o.kind}/${o.metadata?.name}: no schema for apiVersion ${o.apiVersion}`];
  }
  const Model = mod[o.kind] as ModelClass | undefined;
  if (typeof Model !== 'function') return [`${o.kind}/${o.metadata?.name}: no schema for ${o.apiVersion} ${o.kind}`];
  try {
    new Model(o).validate();
    return [];
  } catch (error) {
    return [`${o.kind}/${o.metadata?.name}: ${(error as Error).message}`];
  }
}

/**
 * Type-checks the objects as literals of their `kubernetes-models` interfaces. Returns the compiler's
 * messages (with the object they are about); `[]` when every field is known and well-typed.
 */
export function unknownFieldErrors(objects: readonly K8sObject[]): string[] {
  const file = join(__dirname, '__rendered_objects__.ts');
  const lines: string[] = [];
  const owners: string[] = [];
  objects.forEach((o, i) => {
    lines.push(`import type { I${o.kind} as T${i} } from '${modulePath(o.apiVersion)}/${o.kind}';`);
  });
  const header = lines.length;
  objects.forEach((o, i) => {
    const text = `export const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`;
    for (const _ of text.split('\n')) owners.push(`${o.kind}/${o.metadata?.name}`);
    lines.push(text);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFile(name));
  const program = ts.createProgram({ rootNames: [file], options: { ...options, baseUrl: dirname(file) }, host });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return message;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const owner = line < header ? 'import' : (owners[line - header] ?? '?');
    return `${owner} (line ${line - header + 1}): ${message}`;
  });
}
