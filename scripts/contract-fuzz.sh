#!/usr/bin/env bash
# Fuzzes the service against its contract, openapi.yaml, with schemathesis: a fresh database, `sms-reseller serve
# --migrate` with the built-in 1601 simulator on free ports (as scripts/quickstart.sh starts it), a reseller with a
# sub-account made through the API, then one schemathesis run per role (admin, reseller, sub-account), each with that
# role's key and the real ids of the tenant filled in for path parameters, following the spec's `links` from creates to
# reads and updates. A run fails on any 5xx answer and any answer the spec does not describe (status, content type,
# body schema). See docs/testing.md.
#   bash scripts/contract-fuzz.sh                      every role, MAX_EXAMPLES (default 25) cases per operation
#   MAX_EXAMPLES=5 bash scripts/contract-fuzz.sh       a short run (CI)
#   ROLES=reseller bash scripts/contract-fuzz.sh       one role
#   bash scripts/contract-fuzz.sh --seed 1 …           further arguments go to every `st run`
# schemathesis is installed from PyPI into a virtual environment ($CONTRACT_FUZZ_VENV, default
# /tmp/sms-reseller-schemathesis; python3-venv is installed with apt-get when missing). Reports (JUnit XML, and the
# service's log) go to $CONTRACT_FUZZ_OUT (default .build/contract-fuzz). SMS_RESELLER_BIN=path uses that binary and
# builds nothing; TEST_DATABASE_URL=url makes the database in that cluster instead of a throwaway one.
set -euo pipefail
SCRIPT_NAME=contract-fuzz
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

MAX_EXAMPLES=${MAX_EXAMPLES:-25}
ROLES=${ROLES:-admin reseller sub-account}
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=${CONTRACT_FUZZ_VENV:-/tmp/sms-reseller-schemathesis}
OUT=${CONTRACT_FUZZ_OUT:-.build/contract-fuzz}
[[ $MAX_EXAMPLES =~ ^[1-9][0-9]*$ ]] || die "MAX_EXAMPLES must be a positive whole number, got '$MAX_EXAMPLES'"

ensure_base_packages
ensure_packages curl jq
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    ensure_packages python3-venv
fi
if [ "$("$VENV/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
resolve_sms_reseller_binary
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
root=$(pwd)
trap 'exit 130' INT
trap 'exit 143' TERM
fresh_database contract_fuzz
export DATABASE_URL=$FRESH_DATABASE_URL

# ---------------------------------------------------------------------------------------------------------------
# A fresh service with the built-in simulator.

start_fresh_service "$OUT/service.log" LOG_LEVEL=info

# ---------------------------------------------------------------------------------------------------------------
# Real tenants and ids: the keys of the three roles, and ids for the path parameters.

# api METHOD PATH KEY [JSON]: the answer's body; dies unless 2xx.
api() {
    local method=$1 path=$2 key=$3 body=${4:-} answer status
    answer=$(command curl -s -w '\n%{http_code}' -X "$method" "$API$path" -H "Authorization: Bearer $key" \
        ${body:+-H "Content-Type: application/json" -d "$body"} -H "Idempotency-Key: fuzz-setup-$RANDOM$RANDOM")
    status=${answer##*$'\n'}
    [[ $status == 2* ]] || die "setting up: $method $path answered $status: ${answer%$'\n'*}"
    printf '%s\n' "${answer%$'\n'*}"
}
ADMIN=$(env -i PATH="$PATH" HOME="${HOME:-/root}" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} \
    DATABASE_URL="$DATABASE_URL" "$SMS_RESELLER_BIN" admin create-key --name "contract fuzz" | tail -n 1)
RESELLER=$(api POST /resellers "$ADMIN" '{"name": "Fuzz Reseller"}' | jq -r .id)
RESELLER_KEY=$(api POST "/resellers/$RESELLER/api-keys" "$ADMIN" '{"name": "fuzz"}' | jq -r .secret)
api POST "/resellers/$RESELLER/top-ups" "$ADMIN" '{"amount": "100", "paymentReference": "fuzz"}' >/dev/null
SUB=$(api POST /sub-accounts "$RESELLER_KEY" \
    '{"name": "Fuzz Customer", "username": "fuzz-customer", "password": "correct horse battery staple"}' | jq -r .id)
SUB_KEY=$(api POST "/sub-accounts/$SUB/api-keys" "$RESELLER_KEY" '{"name": "fuzz"}' | jq -r .secret)
api POST "/sub-accounts/$SUB/credit-transfers" "$RESELLER_KEY" '{"amount": "10", "direction": "to_sub_account"}' \
    >/dev/null
LIST=$(api POST /price-lists "$RESELLER_KEY" '{"layer": "retail", "name": "Fuzz retail"}' | jq -r .id)
VERSION=$(api POST "/price-lists/$LIST/versions" "$RESELLER_KEY" \
    '{"entries": [{"prefix": "31", "price": "0.0725"}]}' | jq -r .version.id)
CONTACT=$(api POST "/sub-accounts/$SUB/contacts" "$SUB_KEY" '{"number": "31612345678", "name": "Jan"}' | jq -r .id)
GROUP=$(api POST "/sub-accounts/$SUB/contact-groups" "$SUB_KEY" '{"name": "Staff"}' | jq -r .id)
SENDER=$(api POST /sender-names "$SUB_KEY" '{"name": "Fuzz"}' | jq -r .id)
api POST "/sender-names/$SENDER/approve" "$RESELLER_KEY" >/dev/null
WEBHOOK=$(api POST "/sub-accounts/$SUB/webhooks" "$SUB_KEY" \
    '{"url": "https://93.184.216.34/sms", "eventTypes": ["message.status_changed"]}' | jq -r .id)
CONNECTION=$(api GET /upstream-connections "$ADMIN" | jq -r '.items[0].id')
# A scheduled message, when the tenant's prices allow one (none are set up here, so usually none: message ids are
# then generated).
MESSAGE=$(command curl -s -X POST "$API/sub-accounts/$SUB/messages" -H "Authorization: Bearer $SUB_KEY" \
    -H "Idempotency-Key: fuzz-message" -H "Content-Type: application/json" \
    -d '{"sender": "Fuzz", "text": "hello", "recipients": ["31612345678"], "scheduleAt": "2099-01-01T00:00:00Z"}' \
    | jq -r '.messages[0].id // empty')
# An invoice: the reseller as issuer, the sub-account prepaid, so its credit transfer above is invoiced this month.
api PUT /invoicing/issuer-profile "$RESELLER_KEY" '{"legalName": "Fuzz Reseller B.V.", "address": ["Street 1"],
    "countryCode": "NL", "invoicePrefix": "FUZZ", "creditNotePrefix": "FUZZCN", "paymentTermsDays": 14,
    "currency": "EUR"}' >/dev/null
api PUT "/sub-accounts/$SUB/billing-profile" "$RESELLER_KEY" '{"legalName": "Fuzz Customer", "address": ["Street 2"],
    "countryCode": "NL", "vatRegime": "standard", "vatRate": "21", "billingMode": "prepaid", "creditPrice": "0.05"}' \
    >/dev/null
INVOICE=$(api POST /invoice-runs "$RESELLER_KEY" "{\"month\": \"$(date -u +%Y-%m)\"}" | jq -r '.documents[0].id')
log "reseller $RESELLER, sub-account $SUB, price list $LIST, contact $CONTACT, group $GROUP, invoice $INVOICE"

# Path parameters get these real ids (schemathesis fills the rest of each request), so requests reach handlers past
# the lookups instead of stopping at 404.
config=$OUT/schemathesis.toml
cat >"$config" <<TOML
cache = { directory = "$OUT/cache" }

[parameters]
"path.resellerId" = "$RESELLER"
"path.subAccountId" = "$SUB"
"path.priceListId" = "$LIST"
"path.versionId" = "$VERSION"
"path.contactId" = "$CONTACT"
"path.groupId" = "$GROUP"
"path.senderNameId" = "$SENDER"
"path.webhookId" = "$WEBHOOK"
"path.connectionId" = "$CONNECTION"
"path.invoiceId" = "$INVOICE"
${MESSAGE:+"path.messageId" = "$MESSAGE"}
TOML

# ---------------------------------------------------------------------------------------------------------------
# One run per role.

failed=()
for role in $ROLES; do
    case $role in
        admin) key=$ADMIN ;;
        reseller) key=$RESELLER_KEY ;;
        sub-account) key=$SUB_KEY ;;
        *) die "unknown role '$role' (admin, reseller, sub-account)" ;;
    esac
    log "schemathesis as the $role, $MAX_EXAMPLES examples per operation"
    status=0
    # The 1601-compatible operations answer in the upstream's text with a login of their own; the simulator's
    # control API is not ours. Rate limits and hashing answer 429/503 by design and are described.
    # From $OUT: hypothesis keeps its own directory in the working directory.
    (cd "$OUT" && "$VENV/bin/st" --config-file "$config" run "$root/openapi.yaml" --url "$API" -H "Authorization: Bearer $key" \
        --max-examples "$MAX_EXAMPLES" --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
        --exclude-tag 1601-compatible --phases examples,coverage,fuzzing,stateful --request-timeout 30 \
        --generation-database "$OUT/examples" \
        --report junit --report-junit-path "$OUT/$role.xml" --no-color "$@") \
        || status=$?
    [ "$status" -eq 0 ] || failed+=("$role (exit $status)")
done
if ! grep -q "request failed" "$OUT/service.log"; then
    log "the service logged no server error"
else
    log "the service logged server errors: $(grep -c 'request failed' "$OUT/service.log") (see $OUT/service.log)"
    failed+=("server errors in the log")
fi
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
log "every role passed"
