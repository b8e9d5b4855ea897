import { LocalEd25519JwsSigner, type PublicJwk } from '@sealpost/crypto';
import { TREE_HEAD_JWS_TYPE } from '../../ports/tree-head-signer';

/** The @sealpost/crypto local Ed25519 signer fixed to tree heads (typ TREE_HEAD_JWS_TYPE) — embedded mode. */
export type LocalEd25519Signer = LocalEd25519JwsSigner;

/** Opens tree-head key files (PKCS#8 PEM, mode 0600, created on first use; group/world-readable files refused). */
export const LocalEd25519Signer = {
  /** Loads the key from `file`, creating it (0600, directory 0700) when absent. */
  fromFile: (file: string): Promise<LocalEd25519JwsSigner> =>
    LocalEd25519JwsSigner.fromFile(file, { typ: TREE_HEAD_JWS_TYPE }),
  /** The public JWK (kid, alg) of an existing key file; never creates one. Throws if the file is absent. */
  publicJwkFromFile: (file: string): Promise<PublicJwk> => LocalEd25519JwsSigner.publicJwkFromFile(file),
};
