import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { KeyringError, KmsAccessDeniedError } from '../errors';
import {
  assertIdOnlyContext,
  canonicalContext,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyManagementService,
} from './key-management-service';

/**
 * Blob format of `LocalKeyring.encrypt` (version 1):
 *
 *   [0x01][nonce 12][tag 16][ciphertext]
 *
 * AES-256-GCM under the key id's master key, AAD = UTF-8 canonical JSON of the encryption context
 * (keys sorted), so a blob only opens with exactly the context it was made with, as with AWS KMS.
 */
const BLOB_VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;
const FILE_FORMAT = 'sealpost-local-keyring';
const KEY_ID = /^[A-Za-z0-9._:/-]{1,256}$/;

interface KeyringEntry {
  key: Buffer;
  createdAt: string;
}

interface KeyringFile {
  format: typeof FILE_FORMAT;
  version: 1;
  keys: Record<string, { key: string; createdAt: string }>;
}

/**
 * Embedded-mode stand-in for KMS: one random 256-bit master key per key id, kept in a local file with mode
 * 0600 (created on first run). Never for production: `createKeyManagementService` refuses it there.
 * One process owns the file; keys are added by re-reading and atomically replacing it.
 */
export class LocalKeyring implements KeyManagementService {
  private keys = new Map<string, KeyringEntry>();
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(readonly filePath: string) {}

  /** Opens the keyring at `filePath`, creating it (mode 0600, parent 0700) if absent. Throws `KeyringError`. */
  static async open(filePath: string): Promise<LocalKeyring> {
    const keyring = new LocalKeyring(path.resolve(filePath));
    await mkdir(path.dirname(keyring.filePath), { recursive: true, mode: 0o700 });
    try {
      // 'wx': exactly one opener creates the file, so two first runs cannot both write an empty keyring.
      const handle = await open(keyring.filePath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      try {
        await handle.writeFile(JSON.stringify(emptyFile()));
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KeyringError('Cannot create the local keyring file', { cause: error });
      }
    }
    keyring.keys = await keyring.load();
    return keyring;
  }

  async encrypt(keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    assertIdOnlyContext(context);
    const key = await this.keyFor(keyId, true);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(canonicalContext(context), 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(BLOB_VERSION), nonce, cipher.getAuthTag(), body]);
  }

  async decrypt(keyId: string, ciphertextBlob: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    assertIdOnlyContext(context);
    const key = await this.keyFor(keyId, false);
    const blob = Buffer.from(ciphertextBlob.buffer, ciphertextBlob.byteOffset, ciphertextBlob.byteLength);
    if (blob.length < HEADER_BYTES || blob[0] !== BLOB_VERSION) throw new KmsAccessDeniedError();
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(1, 1 + NONCE_BYTES));
      decipher.setAuthTag(blob.subarray(1 + NONCE_BYTES, HEADER_BYTES));
      decipher.setAAD(Buffer.from(canonicalContext(context), 'utf8'));
      return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES)), decipher.final()]);
    } catch (error) {
      throw new KmsAccessDeniedError(undefined, { cause: error });
    }
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey> {
    const plaintext = randomBytes(32);
    return { plaintext, ciphertextBlob: await this.encrypt(keyId, plaintext, context) };
  }

  private async keyFor(keyId: string, create: boolean): Promise<Buffer> {
    if (!KEY_ID.test(keyId)) throw new TypeError('Invalid KMS key id');
    const known = this.keys.get(keyId);
    if (known) return known.key;
    if (!create) throw new KmsAccessDeniedError('KMS refused the request (unknown key id)');
    // Serialised so two first encrypts for one key id in this process cannot mint two different keys.
    const added = this.writing.then(() => this.addKey(keyId));
    this.writing = added.catch(() => undefined);
    return added;
  }

  private async addKey(keyId: string): Promise<Buffer> {
    // Re-read first: never drop a key another writer added since we loaded the file.
    const current = await this.load();
    let entry = current.get(keyId);
    if (!entry) {
      entry = { key: randomBytes(32), createdAt: new Date().toISOString() };
      current.set(keyId, entry);
      await this.save(current);
    }
    this.keys = current;
    return entry.key;
  }

  private async load(): Promise<Map<string, KeyringEntry>> {
    let info;
    try {
      info = await stat(this.filePath);
    } catch (error) {
      throw new KeyringError('Cannot read the local keyring file', { cause: error });
    }
    // Like ssh with private keys: a keyring others can read is treated as already leaked.
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new KeyringError('The local keyring file must be readable by its owner only (chmod 600)');
    }
    let parsed: KeyringFile;
    try {
      parsed = JSON.parse(await readFile(this.filePath, 'utf8')) as KeyringFile;
    } catch (error) {
      throw new KeyringError('The local keyring file is not valid JSON', { cause: error });
    }
    if (parsed?.format !== FILE_FORMAT || parsed.version !== 1 || typeof parsed.keys !== 'object') {
      throw new KeyringError('The local keyring file has an unknown format');
    }
    const keys = new Map<string, KeyringEntry>();
    for (const [keyId, entry] of Object.entries(parsed.keys)) {
      const key = Buffer.from(String(entry?.key), 'base64');
      if (key.length !== 32) throw new KeyringError('The local keyring file holds a malformed key');
      keys.set(keyId, { key, createdAt: String(entry.createdAt) });
    }
    return keys;
  }

  private async save(keys: Map<string, KeyringEntry>): Promise<void> {
    const file = emptyFile();
    for (const [keyId, entry] of keys) {
      file.keys[keyId] = { key: entry.key.toString('base64'), createdAt: entry.createdAt };
    }
    const temp = `${this.filePath}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await handle.writeFile(JSON.stringify(file, null, 2));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await chmod(temp, 0o600); // the umask cannot widen it, but be explicit before it becomes the keyring
      await rename(temp, this.filePath);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new KeyringError('Cannot write the local keyring file', { cause: error });
    }
  }
}

function emptyFile(): KeyringFile {
  return { format: FILE_FORMAT, version: 1, keys: {} };
}
