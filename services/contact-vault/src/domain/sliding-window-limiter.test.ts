import { VaultError } from './errors';
import { SlidingWindowLimiter } from './sliding-window-limiter';

describe('SlidingWindowLimiter', () => {
  it('allows the limit per window and key, refuses beyond it, and slides', () => {
    let now = 1_000_000;
    const limiter = new SlidingWindowLimiter({ limit: 3, windowMs: 10_000 }, () => now);
    limiter.take('op-1', 1, 'reveal');
    limiter.take('op-1', 2, 'reveal');
    expect(() => limiter.take('op-1', 1, 'reveal')).toThrow(
      expect.objectContaining({ code: 'QUOTA_EXCEEDED', message: expect.stringMatching(/^reveal quota exceeded/) }),
    );
    limiter.take('op-2', 3, 'reveal');
    now += 9_999;
    expect(() => limiter.take('op-1', 1, 'reveal')).toThrow(VaultError);
    now += 2;
    limiter.take('op-1', 3, 'reveal');
    expect(() => limiter.take('op-1', 1, 'reveal')).toThrow(VaultError);
  });

  it('refuses a single take larger than the limit and takes nothing', () => {
    const limiter = new SlidingWindowLimiter({ limit: 5, windowMs: 1000 }, () => 0);
    expect(() => limiter.take('k', 6, 'resolve')).toThrow(VaultError);
    limiter.take('k', 5, 'resolve');
  });
});
