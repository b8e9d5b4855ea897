import { maskEmail, maskPhone } from './mask';

describe('masking', () => {
  it.each([
    ['jane@example.com', 'j***@e***.com'],
    ['a@b.co.uk', 'a***@b***.uk'],
    ['Jöhn.Smith+news@xn--bcher-kva.de', 'J***@x***.de'],
    ['😀x@example.org', '😀***@e***.org'],
    ['not-an-email', '***'],
    ['@example.com', '***'],
    ['jane@', '***'],
  ])('maskEmail(%s) = %s', (input, expected) => {
    expect(maskEmail(input)).toBe(expected);
  });

  it.each([
    ['+447700900123', '+44 ******123'],
    ['+12025550173', '+1 ******173'],
    ['+33612345678', '+33 ******678'],
    ['+4930901820', '+49 ******820'],
    ['07700900123', '***'],
    ['garbage', '***'],
  ])('maskPhone(%s) = %s', (input, expected) => {
    expect(maskPhone(input)).toBe(expected);
  });

  it('does not reveal the length of the hidden part', () => {
    expect(maskEmail('jane@example.com').length).toBe(maskEmail('jonathan.smithers@example.com').length);
    expect(maskPhone('+4930901820').length).toBe(maskPhone('+4930901820123').length);
  });
});
