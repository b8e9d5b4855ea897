#!/usr/bin/env bash
# Creates what deploy/compose.yaml mounts as secrets, under deploy/compose/.state/ (gitignored), once:
#   bash deploy/compose/prepare.sh            (idempotent; `--force` starts over)
# - a CA for the laptop trust domain compose.sealpost.internal (NOT the embedded dev CA: production mode
#   refuses that one) and, from it, SPIFFE certificates spiffe://compose.sealpost.internal/<service> for
#   contact-vault and audit, server certificates for NATS, MongoDB and the TLS fronts of the emulators;
# - random passwords: one NATS user and one MongoDB user per service, NATS admin, MongoDB root;
# - nats.conf with the production per-service permissions (render-nats-conf.ts);
# - an empty JWKS (no operator token is accepted until the identity service joins the stack);
# - the local-kms seed (a random key for tenant demo, the audit tree-head signing key and the contact vault's
#   erasure-receipt signing key);
# - dummy AWS credentials for the emulators (the AWS SDK insists on some).
# The directory is 0700 (other host users cannot read it); the files are 0644 because compose bind-mounts
# them as they are and the containers run as non-root users that must read them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${SEALPOST_COMPOSE_STATE:-$HERE/.state}"
TD=compose.sealpost.internal
SERVICES=(contact-vault consent dispatch audit anomaly identity)
APPS=(contact-vault audit)

[[ "${1:-}" == "--force" ]] && rm -rf "$STATE"
if [[ -f "$STATE/secrets/ca" ]]; then echo "$STATE already prepared (use --force to start over)"; exit 0; fi
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }
mkdir -p "$STATE/secrets" "$STATE/work"
chmod 0700 "$STATE"
S="$STATE/secrets" W="$STATE/work"

password() { openssl rand -base64 36 | tr -dc 'A-Za-z0-9' | head -c 32; }
for u in "${SERVICES[@]}" admin; do password >"$S/nats-$u.password"; done
for u in "${APPS[@]}" root; do password >"$S/mongo-$u.password"; done

# CA (ECDSA P-256). Its URI SAN names the trust domain it speaks for.
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$W/ca.key" -out "$S/ca" \
  -days 30 -subj "/CN=Sealpost compose CA" -addext "subjectAltName=URI:spiffe://$TD" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# leaf NAME SAN EKU -> $S/NAME_cert, $S/NAME_key
leaf() {
  local name="$1" san="$2" eku="$3"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$S/${name}_key" \
    -out "$W/$name.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' \
    "$san" "$eku" >"$W/$name.ext"
  openssl x509 -req -in "$W/$name.csr" -CA "$S/ca" -CAkey "$W/ca.key" -CAcreateserial -CAserial "$W/ca.srl" -days 30 \
    -extfile "$W/$name.ext" -out "$S/${name}_cert" 2>/dev/null
}
for svc in "${APPS[@]}"; do
  leaf "${svc//-/_}" "URI:spiffe://$TD/$svc,DNS:$svc" "serverAuth,clientAuth"
done
leaf nats_server "DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost" "serverAuth,clientAuth"
leaf mongo_server "DNS:mongodb,DNS:localhost" "serverAuth"
cat "$S/mongo_server_cert" "$S/mongo_server_key" >"$S/mongo_server_pem"
leaf emulators "DNS:kms-tls,DNS:ses-tls,DNS:localhost" "serverAuth"

echo '{"keys":[]}' >"$S/jwks"

# local-kms seed: a random AES key for tenant `demo` (alias/sealpost-compose-demo, SEALPOST_KMS_KEY_ID_TEMPLATE
# alias/sealpost-compose-{tenant}). Add tenants by adding keys and aliases here (or via the KMS API).
cat >"$S/kms_seed" <<SEED
Keys:
  Symmetric:
    Aes:
      - Metadata:
          KeyId: $(cat /proc/sys/kernel/random/uuid)
        BackingKeys:
          - $(openssl rand -hex 32)
  # The audit service's tree-head signing key (ECC_NIST_P256, SIGN_VERIFY): SEALPOST_AUDIT_SIGNING_KEY_ID.
  Asymmetric:
    Ecc:
      - Metadata:
          KeyId: $(cat /proc/sys/kernel/random/uuid)
          KeyUsage: SIGN_VERIFY
          Description: sealpost compose audit tree-head signing key
        PrivateKeyPem: |
$(openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | sed 's/^/          /')
      # The contact vault's erasure-receipt signing key (ECC_NIST_P256, SIGN_VERIFY): SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID.
      - Metadata:
          KeyId: $(cat /proc/sys/kernel/random/uuid)
          KeyUsage: SIGN_VERIFY
          Description: sealpost compose contact-vault erasure-receipt signing key
        PrivateKeyPem: |
$(openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | sed 's/^/          /')
Aliases:
  - AliasName: alias/sealpost-compose-demo
    TargetKeyId: KEYID
  - AliasName: alias/sealpost-compose-audit-sth
    TargetKeyId: STHKEYID
  - AliasName: alias/sealpost-compose-vault-receipts
    TargetKeyId: RCPTKEYID
SEED
KEYID="$(sed -n 's/^ *KeyId: //p' "$S/kms_seed" | sed -n 1p)"
STHKEYID="$(sed -n 's/^ *KeyId: //p' "$S/kms_seed" | sed -n 2p)"
RCPTKEYID="$(sed -n 's/^ *KeyId: //p' "$S/kms_seed" | sed -n 3p)"
sed -i "s/TargetKeyId: KEYID/TargetKeyId: $KEYID/; s/TargetKeyId: STHKEYID/TargetKeyId: $STHKEYID/; s/TargetKeyId: RCPTKEYID/TargetKeyId: $RCPTKEYID/" "$S/kms_seed"
printf '[default]\naws_access_key_id = compose-local\naws_secret_access_key = %s\n' "$(password)" >"$S/aws-credentials"

(cd "$ROOT" && pnpm exec tsx deploy/compose/render-nats-conf.ts "$STATE")
rm -rf "$W"
chmod 0644 "$S"/*
echo "prepared $STATE"
