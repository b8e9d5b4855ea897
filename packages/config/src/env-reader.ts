import type { SettingName } from './settings';
import type { ValueSchema } from './values';

/** The environment as `process.env` gives it. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads settings one by one and collects every problem instead of stopping at the first, so that one
 * failed start-up shows everything that must be fixed. Problems name the variable, never its value.
 */
export class EnvReader {
  private readonly problems: string[] = [];
  private readonly flagged = new Set<string>();

  constructor(private readonly env: Env) {}

  /** True when the variable is present with a non-empty value. */
  isSet(name: SettingName): boolean {
    const value = this.env[name];
    return value !== undefined && value.trim() !== '';
  }

  /** Parses a variable with its schema; undefined when unset or invalid (the problem is recorded). */
  read<T>(name: SettingName, schema: ValueSchema<T>): T | undefined {
    const value = this.env[name];
    if (value === undefined) return undefined;
    if (value.trim() === '') {
      // An empty value is almost always a template or secret mount that did not fill in: never default it.
      this.problem(name, 'is set but empty; unset it to use the default, or give a value');
      return undefined;
    }
    if (value.trim() !== value) {
      this.problem(name, 'has leading or trailing whitespace');
      return undefined;
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      this.problem(name, result.error.issues[0]?.message ?? 'is invalid');
      return undefined;
    }
    return result.data;
  }

  /** Records a problem about a variable; later problems about the same variable add lines too. */
  problem(name: string, message: string): void {
    this.flagged.add(name);
    this.problems.push(`${name}: ${message}`);
  }

  /** Records "required" unless the variable already has a problem (an invalid value, say). */
  require(name: SettingName, why: string): void {
    if (!this.flagged.has(name)) this.problem(name, why);
  }

  hasProblem(name: string): boolean {
    return this.flagged.has(name);
  }

  list(): readonly string[] {
    return this.problems;
  }

  /** Variables in the environment that start with the prefix (for the unknown-setting check). */
  namesWithPrefix(prefix: string): string[] {
    return Object.keys(this.env).filter((name) => name.startsWith(prefix));
  }
}
