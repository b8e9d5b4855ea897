/** Test helpers: the real peers from `scripts/peers.sh`, per-run unique names, temp dirs, readiness waits. */
export {
  PEER_NAMES,
  PeerConfigError,
  PeerMissingError,
  REPO_ROOT,
  addressOf,
  describeWithPeer,
  isCi,
  loadPeers,
  natsTlsConnectOptions,
  peerAvailable,
  peersFile,
  requirePeer,
  type NatsCredentials,
  type PeerName,
  type Peers,
} from './peers';
export { UNIQUE_NAME, uniqueName } from './names';
export { cleanupTempDirs, tempDir, type TempDir } from './temp-dir';
export { PeerTimeoutError, portOpen, waitFor, waitForPort, type WaitOptions } from './wait';
export { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver';
export { rawBytesUnaryMethod } from './raw-grpc';
