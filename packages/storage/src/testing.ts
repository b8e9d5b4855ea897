/**
 * `@sealpost/storage/testing`: run one repository contract suite against SQLite and a MongoDB-wire server.
 * Test support only — a separate entry point so production code (and images) never load it or @sealpost/testkit.
 */
export {
  describeRepositoryContract,
  describeWithMongoPeer,
  freshDatabaseName,
  type ContractBackend,
  type ContractCtx,
  type ContractFactories,
  type MongoContractEnv,
  type SqliteContractEnv,
} from './contract';
export { findMongoTestPeer, type MongoPeer } from './mongo-test-peer';
