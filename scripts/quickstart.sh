#!/usr/bin/env bash
# Runs README.md's quickstart against a fresh service and checks every answer: a fresh database, `sms-reseller serve
# --migrate` with the built-in 1601 simulator on free ports, then the quickstart's commands one by one (the first admin
# key, a reseller and its key, a top-up, the platform's upstream cost and wholesale prices, a retail list for a
# sub-account, the sub-account and its key, a sender name requested and approved, credits for the sub-account, a
# message to the simulator and its delivery report, the balances after, the usage report and export, an invoice and
# its PDF). Each step checks the HTTP status and what it prints (prices, balances, the message's status, the invoice's
# figures); a difference fails the script, naming the step.
# The quickstart is the markdown below, the very text of README.md's section: its ```sh blocks are the commands, the
# block after each one is what the command must print. README.md must show every one of those blocks between
# <!-- quickstart:begin --> and <!-- quickstart:end --> (while it has no such markers, only a warning is printed).
#   bash scripts/quickstart.sh              runs it (scripts/test.sh does, after the tests)
#   bash scripts/quickstart.sh --markdown   prints the README section, markers included
# The database is made in a throwaway cluster under /tmp, or, with TEST_DATABASE_URL set (scripts/test.sh sets it), in
# that cluster. The service, the database and the cluster are stopped and removed at exit, on failure too.
# The binary is built with `swift build --product sms-reseller` (debug); SMS_RESELLER_BIN=path uses that binary
# instead and builds nothing.
set -euo pipefail
SCRIPT_NAME=quickstart
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

# What the fences' info strings say (GitHub shows none of it): ```sh runs the block as one step; `status=NNN`: every
# curl call in it must answer NNN (`status=201,200`: the calls in this order, each with its own); `wait=N`: retried
# for up to N seconds until it passes; `norun`: shown, not run (the script sets API and SIM to its own service).
# A non-sh block right after a step is what the step must print. A variable a step assigns (`NAME=$(…)`) must come
# out neither empty nor `null`.
quickstart_markdown() {
    cat <<'QUICKSTART'
Five minutes from a fresh checkout to a delivered message, with the built-in 1601 simulator as the upstream (nothing
reaches a real phone). In one terminal, serve:

```sh norun
bash scripts/run.sh
```

It installs what is missing, builds, starts a private PostgreSQL, applies the migrations and serves the API on
`127.0.0.1:8080`, with the simulator on `127.0.0.1:8099`; the first run creates the database under `.data/`. In a second
terminal, in the checkout, with `curl` and `jq`, type the commands below; under a command is what it prints on that
fresh database. Amounts are credits, always with four decimals. `bash scripts/quickstart.sh` runs these very commands
against a fresh service and checks every figure (CI runs it).

```sh norun
API=http://127.0.0.1:8080 SIM=http://127.0.0.1:8099
```

**1. The first admin key** only comes from the command line: `run.sh` runs `sms-reseller admin create-key` against
the same database. The key is printed once (only its hash is stored), so keep it in a variable:

```sh
ADMIN=$(bash scripts/run.sh admin create-key --name "ops laptop" | tail -n 1)
```

**2. A reseller** and its first API key, as the admin:

```sh status=201
RESELLER=$(curl -s -X POST "$API/resellers" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"name": "Acme Messaging"}' | jq -r .id)
RESELLER_KEY=$(curl -s -X POST "$API/resellers/$RESELLER/api-keys" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"name": "acme backend"}' | jq -r .secret)
```

**3. A top-up:** the reseller paid the platform 100 credits. Calls that move money take an `Idempotency-Key`
(the same key again moves nothing):

```sh status=201
curl -s -X POST "$API/resellers/$RESELLER/top-ups" -H "Authorization: Bearer $ADMIN" \
  -H "Idempotency-Key: top-up-1" -H "Content-Type: application/json" \
  -d '{"amount": "100", "paymentReference": "invoice 2026-001"}' | jq '.account | {kind, balance}'
```

```json
{
  "kind": "reseller_wallet",
  "balance": "100.0000"
}
```

**4. The upstream's cost:** what 1601 charges the platform per part, here for Dutch numbers (prefix `31`). Prices
change only by new versions of a list; a version without `effectiveFrom` is in force at once:

```sh status=201
COST=$(curl -s -X POST "$API/price-lists" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"layer": "upstream_cost", "name": "1601SMS"}' | jq -r .id)
curl -s -X POST "$API/price-lists/$COST/versions" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"entries": [{"prefix": "31", "price": "0.0400"}]}' | jq -r .version.state
```

```
in_force
```

**5. The wholesale price**, what the platform charges resellers, and both lists made the platform's defaults (a
reseller may also get a wholesale list of its own):

```sh status=201,201,200
WHOLESALE=$(curl -s -X POST "$API/price-lists" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"layer": "wholesale", "name": "Standard wholesale"}' | jq -r .id)
curl -s -X POST "$API/price-lists/$WHOLESALE/versions" -H "Authorization: Bearer $ADMIN" \
  -H "Content-Type: application/json" -d '{"entries": [{"prefix": "31", "price": "0.0550"}]}' | jq -r .version.state
curl -s -X PATCH "$API/price-defaults" -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
  -d '{"upstreamCostPriceListId": "'$COST'", "wholesalePriceListId": "'$WHOLESALE'"}' > /dev/null
```

```
in_force
```

**6. A sub-account** (the reseller's customer) and its API key, as the reseller. Its username and password are
also its login for the 1601-compatible endpoint:

```sh status=201
SUB=$(curl -s -X POST "$API/sub-accounts" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" \
  -d '{"name": "Bakery Jansen", "username": "bakery-jansen", "password": "correct horse battery staple"}' | jq -r .id)
SUB_KEY=$(curl -s -X POST "$API/sub-accounts/$SUB/api-keys" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"name": "webshop"}' | jq -r .secret)
```

**7. The retail price**, what the reseller charges this customer: its own list, assigned to the sub-account (a
retail price below the wholesale one is refused unless the list allows loss):

```sh status=201,201,200
RETAIL=$(curl -s -X POST "$API/price-lists" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"layer": "retail", "name": "Standard customers"}' | jq -r .id)
curl -s -X POST "$API/price-lists/$RETAIL/versions" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"entries": [{"prefix": "31", "price": "0.0725"}]}' > /dev/null
curl -s -X PUT "$API/sub-accounts/$SUB/retail-price-list" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"priceListId": "'$RETAIL'"}' | jq -r .retail.source
```

```
own
```

**8. A sender name:** the customer requests one, the reseller approves it:

```sh status=201,200
SENDER=$(curl -s -X POST "$API/sender-names" -H "Authorization: Bearer $SUB_KEY" \
  -H "Content-Type: application/json" -d '{"name": "Jansen"}' | jq -r .id)
curl -s -X POST "$API/sender-names/$SENDER/approve" -H "Authorization: Bearer $RESELLER_KEY" | jq -r .status
```

```
approved
```

**9. Credits for the customer**, who paid the reseller 12.10 EUR for them outside the system; the reseller issues
them and records what was paid (for the invoice of step 16):

```sh status=201
curl -s -X POST "$API/sub-accounts/$SUB/credit-transfers" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Idempotency-Key: credits-1" -H "Content-Type: application/json" \
  -d '{"amount": "10", "direction": "to_sub_account", "amountPaid": "12.10", "currency": "EUR"}' \
  | jq '.account | {kind, balance}'
```

```json
{
  "kind": "sub_account_wallet",
  "balance": "10.0000"
}
```

**10. Delivery reports** come from the upstream to the callback URL of its connection (`callbackPath`, a secret
token). With the real gateway it goes into the 1601 account's settings; here into the simulator's sandbox account,
through its control API:

```sh status=200
CALLBACK=$(curl -s "$API/upstream-connections" -H "Authorization: Bearer $ADMIN" | jq -r '.items[0].callbackPath')
curl -s -X PATCH "$SIM/_sim/accounts/sandbox" -H "Content-Type: application/json" \
  -d '{"callbackURL": "'$API$CALLBACK'"}' | jq -r .username
```

```
sandbox
```

**11. Send** a message as the customer (`Idempotency-Key` required). Accepting it (201) reserves the retail price on
the customer's wallet and the wholesale price on the reseller's; keep the message's id:

```sh status=201
MESSAGE=$(curl -s -X POST "$API/sub-accounts/$SUB/messages" -H "Authorization: Bearer $SUB_KEY" \
  -H "Idempotency-Key: hello-1" -H "Content-Type: application/json" \
  -d '{"sender": "Jansen", "text": "Your order is ready for pickup.", "recipients": ["+31 6 1234 5678"]}' \
  | jq -r '.messages[0].id')
```

**12. Delivered:** the dispatcher hands the message to the simulator, which reports SUBMITTED, BUFFERED and, about
two seconds after the send, DELIVERED (it delivers 90 % of messages). Read it again until it says `delivered`; the
admin sees all three prices:

```sh status=200 wait=20
curl -s "$API/sub-accounts/$SUB/messages/$MESSAGE" -H "Authorization: Bearer $ADMIN" \
  | jq '{recipient, status, price: .price | {retail, wholesale, upstreamCost}}'
```

```json
{
  "recipient": "31612345678",
  "status": "delivered",
  "price": {
    "retail": "0.0725",
    "wholesale": "0.0550",
    "upstreamCost": "0.0400"
  }
}
```

**13. The balances after:** the delivery report settled both reservations. The customer paid 0.0725 (the reseller's
revenue), the reseller paid 0.0550 from its wallet (the platform's revenue); the issued credits and the top-up are
the other sides. The upstream's cost of the message (0.0400) was posted when the upstream took it, from the
connection's prepaid balance (no purchase recorded yet, so it is below zero) to its cost of sales. As the admin, every
account:

```sh status=200
curl -s "$API/accounts" -H "Authorization: Bearer $ADMIN" | jq -S '.items | map({(.kind): .balance}) | add'
```

```json
{
  "platform_funding": "-100.0000",
  "platform_revenue": "0.0550",
  "reseller_issuance": "-10.0000",
  "reseller_revenue": "0.0725",
  "reseller_wallet": "99.9450",
  "sub_account_wallet": "9.9275",
  "upstream_balance": "-0.0400",
  "upstream_cost": "0.0400"
}
```

**14. What the reseller sold, and earned:** usage over a period, in the reseller's scope (retail and wholesale; the
upstream cost is the admin's). Money counts when its transfer was posted ([docs/finance.md](docs/finance.md)):

```sh status=200
curl -s "$API/reports/usage?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&groupBy=country" \
  -H "Authorization: Bearer $RESELLER_KEY" | jq -S '.rows[0] | {country, figures}'
```

```json
{
  "country": "31",
  "figures": {
    "messages": 1,
    "parts": 1,
    "resellerMargin": "0.0175",
    "retailCharged": "0.0725",
    "retailPending": "0.0000",
    "retailRefunded": "0.0000",
    "wholesaleCharged": "0.0550",
    "wholesalePending": "0.0000",
    "wholesaleRefunded": "0.0000"
  }
}
```

**15. The same for the bookkeeper:** `GET /exports/{dataset}` streams CSV or JSON Lines; on the command line
`sms-reseller export` writes the same rows to a file or standard output, here as the reseller sees them:

```sh
bash scripts/run.sh export usage --from 2026-01-01 --to 2100-01-01 --group-by country --format jsonl \
  --role reseller --reseller "$RESELLER" 2>/dev/null | jq -c '{country, messages, retail_charged, reseller_margin}'
```

```json
{"country":"31","messages":1,"retail_charged":"0.0725","reseller_margin":"0.0175"}
```

**16. An invoice for the customer:** the reseller gives itself a legal profile as issuer and the customer a billing
profile (prepaid: each purchase of credits is invoiced, 21 % VAT), then runs the month's invoices
([docs/invoices.md](docs/invoices.md)). The credits of step 9 get an invoice whose total is what was paid:

```sh status=200,200,200,200
curl -s -X PUT "$API/invoicing/issuer-profile" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"legalName": "Acme Messaging B.V.", "address": ["Keizersgracht 1",
  "1015 CJ Amsterdam"], "countryCode": "NL", "vatNumber": "NL000099998B57", "invoicePrefix": "ACME",
  "creditNotePrefix": "ACMECN", "paymentTermsDays": 14, "currency": "EUR"}' > /dev/null
curl -s -X PUT "$API/sub-accounts/$SUB/billing-profile" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"legalName": "Bakkerij Jansen", "address": ["Dorpsstraat 1",
  "1234 AB Ons Dorp"], "countryCode": "NL", "vatRegime": "standard", "vatRate": "21", "billingMode": "prepaid",
  "creditPrice": "1.00"}' > /dev/null
INVOICE=$(curl -s -X POST "$API/invoice-runs" -H "Authorization: Bearer $RESELLER_KEY" \
  -H "Content-Type: application/json" -d '{"month": "'$(date -u +%Y-%m)'"}' | jq -r '.documents[0].id')
curl -s "$API/invoices/$INVOICE" -H "Authorization: Bearer $SUB_KEY" \
  | jq -c '{source, lines: [.lines[] | {quantity, unit, net, vatRate}], netTotal, vatTotal, total, currency}'
```

```json
{"source":"purchase","lines":[{"quantity":"10.0000","unit":"credit","net":"10.00","vatRate":"21.00"}],"netTotal":"10.00","vatTotal":"2.10","total":"12.10","currency":"EUR"}
```

The customer downloads it as a PDF (`-o invoice.pdf` keeps it; `.csv`, or `Accept`, for the other formats); here
its first bytes:

```sh status=200
curl -s "$API/invoices/$INVOICE.pdf" -H "Authorization: Bearer $SUB_KEY" | head -c 8; echo
```

```
%PDF-1.3
```
QUICKSTART
}

# ---------------------------------------------------------------------------------------------------------------
# The machinery: print the markdown, run its steps, or check README.md against them.

begin_marker='<!-- quickstart:begin -->'
end_marker='<!-- quickstart:end -->'
case ${1:-} in
    "") ;;
    --markdown) printf '%s\n\n' "$begin_marker"; quickstart_markdown; printf '\n%s\n' "$end_marker"; exit 0 ;;
    *) die "usage: bash scripts/quickstart.sh [--markdown]" ;;
esac

# Splits the markdown into steps: STEP_COMMAND, STEP_OPTIONS, STEP_OUTPUT, STEP_TITLE (the paragraph's bold start),
# STEP_FENCE and STEP_OUTPUT_BLOCK (the blocks as written, for the README check), one entry per ```sh block.
STEP_COMMAND=() STEP_OPTIONS=() STEP_OUTPUT=() STEP_TITLE=() STEP_FENCE=() STEP_OUTPUT_BLOCK=()
parse_steps() {
    local line info="" block="" inside=false title="" current=-1
    while IFS= read -r line; do
        if ! $inside; then
            if [[ $line =~ ^\`\`\`(.*)$ ]]; then
                inside=true info=${BASH_REMATCH[1]} block=""
            elif [[ $line =~ ^\*\*([^*]+)\*\* ]]; then
                title=${BASH_REMATCH[1]}
            fi
            continue
        fi
        if [ "$line" != '```' ]; then
            block+="${block:+$'\n'}$line"
            continue
        fi
        inside=false
        if [[ $info == sh || $info == "sh "* ]]; then
            current=${#STEP_COMMAND[@]}
            STEP_COMMAND+=("$block") STEP_OPTIONS+=("${info#sh}") STEP_TITLE+=("$title")
            STEP_FENCE+=("\`\`\`$info"$'\n'"$block"$'\n```') STEP_OUTPUT+=("") STEP_OUTPUT_BLOCK+=("")
        elif [ "$current" -ge 0 ] && [ -z "${STEP_OUTPUT_BLOCK[$current]}" ]; then
            STEP_OUTPUT[$current]=$block
            STEP_OUTPUT_BLOCK[$current]="\`\`\`$info"$'\n'"$block"$'\n```'
        else
            die "the quickstart's block \`\`\`$info after step $((current + 1)) follows no command"
        fi
    done < <(quickstart_markdown)
}

option() { # option NAME OPTIONS: the value of NAME=… among OPTIONS, or `yes` for a bare NAME, or nothing.
    local word
    for word in $2; do
        case $word in "$1="*) printf '%s' "${word#*=}"; return ;; "$1") printf yes; return ;; esac
    done
}

# curl as the steps call it, but also keeping each HTTP status and the last body for the checks.
curl() {
    local code
    code=$(command curl -sS -o "$work/body" -w '%{http_code}' "$@") || code="${code:-000} (curl failed)"
    printf '%s\n' "$code" >>"$work/statuses"
    cat "$work/body" 2>/dev/null || true
}

# run_step INDEX: runs it, checks it, and on a difference says what and exits 1.
run_step() {
    local index=$1 command=${STEP_COMMAND[$1]} options=${STEP_OPTIONS[$1]} expected=${STEP_OUTPUT[$1]}
    local name status wait deadline problem ran printed line variable variables=()
    name=${STEP_TITLE[$index]%:}
    name="step \"${name:-block $((index + 1))}\""
    status=$(option status "$options")
    wait=$(option wait "$options")
    deadline=$((SECONDS + ${wait:-0}))
    while IFS= read -r line; do
        if [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=\$\( ]]; then variables+=("${BASH_REMATCH[1]}"); fi
    done <<<"$command"
    while :; do
        rm -f "$work/body"
        : >"$work/statuses"
        ran=0
        eval "$command" >"$work/out" 2>"$work/err" || ran=$?
        printed=$(cat "$work/out")
        problem=""
        if [ "$ran" -ne 0 ]; then
            problem="the command exited with status $ran"
        elif [ -n "$status" ] && [ ! -s "$work/statuses" ]; then
            problem="no HTTP call was made"
        elif [[ $status == *,* ]] && [ "$(paste -sd, "$work/statuses")" != "$status" ]; then
            problem="HTTP statuses $(paste -sd, "$work/statuses") where $status were expected, call by call"
        elif [[ $status != *,* ]] && grep -qvx "$status" "$work/statuses"; then
            problem="HTTP status $(grep -vx "$status" "$work/statuses" | head -n 1) where $status was expected"
        fi
        if [ -z "$problem" ]; then
            for variable in ${variables[@]+"${variables[@]}"}; do
                if [ -z "${!variable:-}" ] || [ "${!variable}" = null ]; then problem="\$$variable came out ${!variable:-empty}"; break; fi
            done
        fi
        if [ -z "$problem" ] && [ "$printed" != "$expected" ]; then
            problem="it printed something other than the expected output"
        fi
        [ -n "$problem" ] && [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.25
    done
    if [ -z "$problem" ]; then
        log "ok: $name"
        return 0
    fi
    log "FAILED: $name: $problem${wait:+ (retried for ${wait} s)}"
    {
        printf -- '--- command:\n%s\n' "$command"
        if [ "$printed" != "$expected" ]; then
            printf -- '--- expected output:\n%s\n--- printed:\n%s\n--- diff:\n' "$expected" "$printed"
            diff <(printf '%s\n' "$expected") <(printf '%s\n' "$printed") || true
        fi
        if [ -s "$work/body" ]; then printf -- '--- the last HTTP answer (%s):\n' "$(tail -n 1 "$work/statuses")"; cat "$work/body"; echo; fi
        if [ -s "$work/err" ]; then printf -- '--- stderr:\n'; tail -n 20 "$work/err"; fi
        printf -- '--- the service log'"'"'s last lines:\n'
        tail -n 15 "$work/service.log" 2>/dev/null || true
    } >&2
    exit 1
}

parse_steps

# ---------------------------------------------------------------------------------------------------------------
# A fresh service.

ensure_base_packages
ensure_packages curl jq
resolve_sms_reseller_binary
work=$(mktemp -d /tmp/sms-reseller-quickstart-out.XXXXXX)
at_exit "rm -rf $(printf %q "$work")"
trap 'exit 130' INT
trap 'exit 143' TERM
fresh_database quickstart
export DATABASE_URL=$FRESH_DATABASE_URL

start_fresh_service "$work/service.log"

# ---------------------------------------------------------------------------------------------------------------
# The steps, then README.md.

ran_steps=0
for index in "${!STEP_COMMAND[@]}"; do
    [ "$(option norun "${STEP_OPTIONS[$index]}")" != yes ] || continue
    run_step "$index"
    ran_steps=$((ran_steps + 1))
done
log "all $ran_steps steps passed"

if ! readme=$(awk -v begin="$begin_marker" -v end="$end_marker" \
    'index($0, end) { inside = 0 } inside { print } index($0, begin) { inside = 1; found = 1 } END { exit !found }' README.md); then
    log "warning: README.md has no quickstart section between $begin_marker and $end_marker yet: paste the output of \`bash scripts/quickstart.sh --markdown\` there"
    exit 0
fi
missing=()
for index in "${!STEP_COMMAND[@]}"; do
    for block in "${STEP_FENCE[$index]}" "${STEP_OUTPUT_BLOCK[$index]}"; do
        [ -z "$block" ] || [[ $readme == *"$block"* ]] || missing+=("$block")
    done
done
if [ ${#missing[@]} -gt 0 ]; then
    log "FAILED: README.md's quickstart section lacks these blocks, which the steps run and check:"
    printf '%s\n' "${missing[@]}" >&2
    die "paste the output of \`bash scripts/quickstart.sh --markdown\` between the markers (or fix the steps in scripts/quickstart.sh)"
fi
log "README.md's quickstart section shows every command and expected output"
