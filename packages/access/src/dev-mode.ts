import { DevModeRefusedError } from './errors';

/** Runtime mode; anything but `production` allows the development stand-ins. */
export type RuntimeMode = 'production' | 'development' | 'embedded' | 'test';

/** Throws `DEV_MODE_REFUSED` when `mode` is production; call before touching any dev CA, key or token. */
export function assertDevModeAllowed(mode: RuntimeMode | string, what: string): void {
  if (mode === 'production') throw new DevModeRefusedError(what);
}
