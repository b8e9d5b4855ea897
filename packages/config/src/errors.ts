/**
 * Thrown by `loadConfig` when the environment is unusable. `problems` holds one line per problem, each
 * starting with the variable it is about; no line ever contains a variable's value.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(`invalid Sealpost configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.name = 'ConfigError';
    this.problems = Object.freeze([...problems]);
  }
}
