import { runBusContract } from './bus-contract';
import { embeddedHarness } from './support/embedded-harness';

describe('bus contract: embedded SQLite bus', () => {
  runBusContract(async (dir) => embeddedHarness(dir.path));
});
