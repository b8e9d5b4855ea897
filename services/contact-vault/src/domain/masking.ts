import { maskEmail, maskPhone } from '@sealpost/crypto';
import type { ContactFields } from './contact-fields';

/** The masked view of a contact's fields (`j***@e***.com`, `+44 ******123`, `J***`); empty when absent. */
export interface MaskedFields {
  readonly email: string;
  readonly phone: string;
  readonly name: string;
}

/** First character of a name and a fixed mask, so the length is not revealed. */
export function maskName(name: string): string {
  const first = Array.from(name)[0];
  return first === undefined ? '' : `${first}***`;
}

export function maskFields(fields: ContactFields): MaskedFields {
  return {
    email: fields.email === undefined ? '' : maskEmail(fields.email),
    phone: fields.phone === undefined ? '' : maskPhone(fields.phone),
    name: fields.name === undefined ? '' : maskName(fields.name),
  };
}
