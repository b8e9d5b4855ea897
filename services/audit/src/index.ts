/** Public API of the audit service package. */
export * from './domain';
