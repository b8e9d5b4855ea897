/** The vault's domain: ids, field rules, dedupe decisions, masking, errors. No I/O. */
export * from './errors';
export * from './ids';
export * from './contact-fields';
export * from './dedupe';
export * from './masking';
export * from './sliding-window-limiter';
