import { InvalidFieldError } from './errors';
import { NORM_VERSION, normalizeContactFields, normalizeEmail, normalizePhone } from './normalize';

function invalid(field: 'email' | 'phone', run: () => unknown, value: string): InvalidFieldError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(InvalidFieldError);
  const error = thrown as InvalidFieldError;
  expect(error.code).toBe('INVALID_ARGUMENT');
  expect(error.field).toBe(field);
  expect(error.message).toMatch(new RegExp(`^Invalid ${field}: `));
  // Never the value, nor a recognisable piece of it.
  const trimmed = value.trim();
  if (trimmed.length > 0) expect(error.message).not.toContain(trimmed);
  for (const part of trimmed.split(/[@\s]+/).filter((p) => p.length >= 4)) expect(error.message).not.toContain(part);
  return error;
}

describe('normalizeEmail', () => {
  it.each([
    ['  Jane.Doe@Example.COM ', 'jane.doe@example.com'],
    ['jane@bücher.de', 'jane@xn--bcher-kva.de'],
    ['JANE@BÜCHER.DE', 'jane@xn--bcher-kva.de'],
    ['jane@例え.テスト', 'jane@xn--r8jz45g.xn--zckzah'],
    ['jane@xn--bcher-kva.de', 'jane@xn--bcher-kva.de'],
    ['Jane.Doe+news@gmail.com', 'jane.doe+news@gmail.com'],
    ['josé@example.com', 'josé@example.com'],
    // NFC: "e" + combining acute equals the precomposed "é".
    ['jose\u0301@example.com', 'josé@example.com'],
  ])('%j → %j (folding off)', (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it.each([
    ['Jane.Doe+news@gmail.com', 'janedoe@gmail.com'],
    ['j.a.n.e@googlemail.com', 'jane@gmail.com'],
    ['jane+promo@outlook.com', 'jane@outlook.com'],
    ['jane+promo@icloud.com', 'jane@icloud.com'],
    // Unknown providers may treat '+' and '.' literally: never folded.
    ['jane.doe+promo@example.com', 'jane.doe+promo@example.com'],
  ])('%j → %j (folding on)', (input, expected) => {
    expect(normalizeEmail(input, { foldEmailAliases: true })).toBe(expected);
  });

  it('folds only when the tenant turns it on', () => {
    const a = 'jane.doe+x@gmail.com';
    const b = 'janedoe@gmail.com';
    expect(normalizeEmail(a)).not.toBe(normalizeEmail(b));
    expect(normalizeEmail(a, { foldEmailAliases: true })).toBe(normalizeEmail(b, { foldEmailAliases: true }));
  });

  it.each([
    '',
    '   ',
    'jane.example.com',
    'jane@',
    '@example.com',
    'jane doe@example.com',
    'jane@exa mple.com',
    'jane@localhost',
    'jane@192.168.0.1',
    'jane@[127.0.0.1]',
    'jane@-example.com',
    'jane@example..com',
    'jane@exam_ple.com',
    '.jane@example.com',
    'ja..ne@example.com',
    '"jane doe"@example.com',
    `${'a'.repeat(65)}@example.com`,
    `jane@${'a'.repeat(250)}.com`,
  ])('refuses %j with the field named and the value withheld', (input) => {
    invalid('email', () => normalizeEmail(input), input);
  });

  it('refuses an address that folds to nothing', () => {
    invalid('email', () => normalizeEmail('+tag@gmail.com', { foldEmailAliases: true }), '+tag@gmail.com');
  });
});

describe('normalizePhone', () => {
  it.each([
    ['+44 7911 123456', undefined, '+447911123456'],
    ['07911 123456', 'GB', '+447911123456'],
    ['0044 7911 123456', 'GB', '+447911123456'],
    ['(202) 555-0173', 'US', '+12025550173'],
    ['+1 202-555-0173', 'GB', '+12025550173'],
    ['06 12 34 56 78', 'FR', '+33612345678'],
    ['＋４４７９１１１２３４５６', undefined, '+447911123456'],
  ])('%j with default region %s → %s', (input, region, expected) => {
    expect(normalizePhone(input, region ? { defaultRegion: region } : {})).toBe(expected);
  });

  it('reads a national number through the tenant default region', () => {
    expect(normalizePhone('06 12 34 56 78', { defaultRegion: 'FR' })).toBe('+33612345678');
    // The same digits under a GB default are not a valid UK number.
    invalid('phone', () => normalizePhone('06 12 34 56 78', { defaultRegion: 'GB' }), '06 12 34 56 78');
    // No default region: a national number cannot be placed.
    invalid('phone', () => normalizePhone('07911 123456'), '07911 123456');
  });

  it.each(['', 'qwerty', '12345', '+44 7911 123456 ext 12', 'call +447911123456', '+999 1234567', '+44 7700 900123'])(
    'refuses %j with the field named and the value withheld',
    (input) => {
      invalid('phone', () => normalizePhone(input, { defaultRegion: 'GB' }), input);
    },
  );

  it('treats an unsupported default region as a configuration error, not bad input', () => {
    expect(() => normalizePhone('+447911123456', { defaultRegion: 'XX' })).toThrow(RangeError);
  });
});

it('compiles each of the metadata number patterns once (the pnpm patch of libphonenumber-js is applied)', () => {
  // Unpatched, the library builds a RegExp from a metadata pattern string for every pattern it tries on every call:
  // half the cost of a parse, and a bulk import parses one phone per row. patches/ holds the fix; a dependency
  // update that drops it fails here rather than quietly halving the import rate.
  const Native = globalThis.RegExp;
  let fullMatchPatterns = 0;
  globalThis.RegExp = new Proxy(Native, {
    construct(target, args: [string | RegExp, string?]) {
      if (String(args[0]).endsWith(')$')) fullMatchPatterns += 1;
      return new target(...args);
    },
  });
  try {
    // Regions no other test here parses, so the first round compiles their patterns while the count is on.
    const parseAll = (): string[] => [
      normalizePhone('+81 3-1234-5678'),
      normalizePhone('0412 345 678', { defaultRegion: 'AU' }),
      normalizePhone('+55 11 91234-5678', { defaultRegion: 'US' }),
    ];
    const parsed = ['+81312345678', '+61412345678', '+5511912345678'];
    expect(parseAll()).toEqual(parsed);
    expect(fullMatchPatterns).toBeGreaterThan(0); // the count does see the library's expressions
    fullMatchPatterns = 0;
    expect(parseAll()).toEqual(parsed);
    expect(fullMatchPatterns).toBe(0);
  } finally {
    globalThis.RegExp = Native;
  }
});

describe('normalizeContactFields', () => {
  it('normalises the fields present and stamps the rules version', () => {
    expect(normalizeContactFields({ email: ' A@B.com ', phone: '07911 123456' }, { defaultRegion: 'GB' })).toEqual({
      email: 'a@b.com',
      phone: '+447911123456',
      normVersion: NORM_VERSION,
    });
    expect(normalizeContactFields({ email: null })).toEqual({ normVersion: NORM_VERSION });
  });

  it('reports the first invalid field by name', () => {
    invalid('phone', () => normalizeContactFields({ email: 'a@b.com', phone: 'nope' }), 'nope');
  });
});
