#!/usr/bin/env python3
"""The fault suite's clients and checks (scripts/fault-suite.sh runs them; docs/testing.md, "The fault suite").

  setup  API SIM ADMIN_KEY CALLBACK_BASE     one tenant ready to send; prints its ids and keys as JSON
  load   STATE SECONDS CLIENTS SEED OUT API...  careful clients sending for SECONDS; what each key got goes to OUT
  check  STATE OUT SIM PSQL_URL VERIFY_OUTPUT  the suite's verdict line (VERIFY_OUTPUT: what verify-ledger printed)

Standard library only. A careful client: every send has its own Idempotency-Key; after a connection error, a timeout,
a 5xx, a 409 `idempotency_in_progress` or a 429 it sends the same request with the same key again (to any instance)
until it gets an answer that is final (2xx, or a 4xx that is not one of those).
"""
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(method, url, key=None, body=None, headers=None, timeout=30):
    """(status, parsed JSON or text); raises OSError-like exceptions on transport failures."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def must(expected, result, what):
    status, body = result
    if status != expected:
        sys.exit(f"fault suite setup: {what} answered {status}: {body}")
    return body


def setup(api, sim, admin, callback_base):
    """The quickstart's tenant, with room for thousands of messages, and callbacks to CALLBACK_BASE."""
    reseller = must(201, call("POST", f"{api}/resellers", admin, {"name": "Fault suite reseller"}), "reseller")["id"]
    reseller_key = must(
        201, call("POST", f"{api}/resellers/{reseller}/api-keys", admin, {"name": "fault suite"}), "reseller key"
    )["secret"]
    must(201, call("POST", f"{api}/resellers/{reseller}/top-ups", admin,
                   {"amount": "100000", "paymentReference": "fault suite"}, {"Idempotency-Key": "fs-top-up"}), "top-up")
    lists = {}
    for layer, owner, price in (("upstream_cost", admin, "0.0400"), ("wholesale", admin, "0.0550"),
                                ("retail", reseller_key, "0.0725")):
        lists[layer] = must(201, call("POST", f"{api}/price-lists", owner, {"layer": layer, "name": layer}),
                            layer)["id"]
        must(201, call("POST", f"{api}/price-lists/{lists[layer]}/versions", owner,
                       {"entries": [{"prefix": "31", "price": price}]}), layer + " version")
    must(200, call("PATCH", f"{api}/price-defaults", admin,
                   {"upstreamCostPriceListId": lists["upstream_cost"], "wholesalePriceListId": lists["wholesale"]}),
         "price defaults")
    sub = must(201, call("POST", f"{api}/sub-accounts", reseller_key,
                         {"name": "Fault suite customer", "username": "fault-suite",
                          "password": "correct horse battery staple"}), "sub-account")["id"]
    sub_key = must(201, call("POST", f"{api}/sub-accounts/{sub}/api-keys", reseller_key, {"name": "fault suite"}),
                   "sub-account key")["secret"]
    must(200, call("PUT", f"{api}/sub-accounts/{sub}/retail-price-list", reseller_key,
                   {"priceListId": lists["retail"]}), "retail list")
    sender = must(201, call("POST", f"{api}/sender-names", sub_key, {"name": "Faults"}), "sender name")["id"]
    must(200, call("POST", f"{api}/sender-names/{sender}/approve", reseller_key), "approval")
    must(201, call("POST", f"{api}/sub-accounts/{sub}/credit-transfers", reseller_key,
                   {"amount": "50000", "direction": "to_sub_account"}, {"Idempotency-Key": "fs-credits"}), "credits")
    connection = must(200, call("GET", f"{api}/upstream-connections", admin), "connections")["items"][0]
    # Short request timeouts, so that hangs become timeouts (sends in doubt) within the run.
    must(200, call("PATCH", f"{api}/upstream-connections/{connection['id']}", admin,
                   {"requestTimeoutMs": 2000, "concurrency": 16, "rateLimitPerSecond": 200}), "connection")
    must(200, call("PATCH", f"{sim}/_sim/accounts/sandbox", None,
                   {"callbackURL": callback_base + connection["callbackPath"]}), "simulator callback URL")
    print(json.dumps({"subAccount": sub, "subAccountKey": sub_key, "admin": admin}))


def load(state_file, seconds, clients, seed, out_file, apis):
    state = json.load(open(state_file))
    sub, key = state["subAccount"], state["subAccountKey"]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    out = open(out_file, "w")
    counts = {"requests": 0, "retries": 0}

    def client(number):
        rng = random.Random(seed * 1000 + number)
        while time.monotonic() < deadline:
            idempotency_key = str(uuid.UUID(int=rng.getrandbits(128)))
            bulk = rng.random() < 0.25
            recipients = ["+316%08d" % rng.randrange(10 ** 8) for _ in range(rng.randint(2, 10) if bulk else 1)]
            body = {"sender": "Faults", "text": f"fault suite {number} {idempotency_key[:8]}", "recipients": recipients}
            answers, tries, started = [], 0, time.monotonic()
            while True:
                tries += 1
                api = rng.choice(apis)
                try:
                    status, answer = call("POST", f"{api}/sub-accounts/{sub}/messages", key, body,
                                          {"Idempotency-Key": idempotency_key}, timeout=20)
                except Exception as error:  # refused, reset, timed out: the outcome is unknown, ask again
                    status, answer = None, str(error)
                if status is not None and (200 <= status < 300):
                    answers.append({"status": status, "batchId": answer.get("batchId"),
                                    "messages": sorted(m["id"] for m in answer.get("messages", []))})
                    break
                retryable = status is None or status >= 500 or status == 429 or (
                    status == 409 and isinstance(answer, dict) and "in_progress" in json.dumps(answer))
                if not retryable:
                    answers.append({"status": status, "problem": answer})
                    break
                if time.monotonic() - started > 600:
                    answers.append({"status": status, "gaveUp": True, "last": str(answer)[:200]})
                    break
                time.sleep(min(2.0, 0.05 * (2 ** min(tries, 6))) * rng.random() + 0.05)
            # Asked once more after success: the stored answer must be the same acceptance.
            if answers[-1].get("batchId") and rng.random() < 0.1:
                try:
                    status, answer = call("POST", f"{rng.choice(apis)}/sub-accounts/{sub}/messages", key, body,
                                          {"Idempotency-Key": idempotency_key}, timeout=20)
                    if 200 <= status < 300:
                        answers.append({"status": status, "batchId": answer.get("batchId"), "replay": True,
                                        "messages": sorted(m["id"] for m in answer.get("messages", []))})
                except Exception:
                    pass
            # A client of a real business: a send now and then, not a flood (the flood is bench-goals.sh's job).
            time.sleep(rng.uniform(0.1, 0.6))
            with lock:
                counts["requests"] += 1
                counts["retries"] += tries - 1
                out.write(json.dumps({"key": idempotency_key, "recipients": len(recipients), "answers": answers}) + "\n")
                out.flush()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.close()
    print(f"sends={counts['requests']} retries={counts['retries']}", file=sys.stderr)


def psql(url, sql):
    result = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-d", url, "-c", sql], capture_output=True, text=True,
                            check=True)
    return [line for line in result.stdout.splitlines() if line]


def check(state_file, out_file, sim, url, verify_file):
    records = [json.loads(line) for line in open(out_file)]
    accepted_batches, accepted_messages, problems = {}, set(), []
    double_accepted, undecided = 0, 0
    for record in records:
        batches = {a["batchId"] for a in record["answers"] if a.get("batchId")}
        message_sets = {tuple(a["messages"]) for a in record["answers"] if a.get("batchId")}
        if len(batches) > 1 or len(message_sets) > 1:
            double_accepted += 1
            problems.append(f"key {record['key']} accepted as {sorted(batches)}")
        if batches:
            accepted_batches[record["key"]] = batches.pop()
            accepted_messages.update(message_sets.pop())
        elif record["answers"][-1].get("gaveUp"):
            undecided += 1
            problems.append(f"key {record['key']}: no final answer ({record['answers'][-1]})")
    database_batches = set(psql(url, "SELECT id FROM message_batch"))
    database_messages = set(psql(url, "SELECT id FROM message"))
    lost = len(accepted_messages - database_messages)
    # Batches nobody was told about: a key accepted twice, the second acceptance's answer never reaching its client.
    unknown = database_batches - set(accepted_batches.values())
    double_accepted += len(unknown)
    problems += [f"batch {b} in the database, unknown to every client" for b in sorted(unknown)[:5]]
    not_final = psql(url, """SELECT id FROM message WHERE status NOT IN
        ('delivered', 'not_delivered', 'rejected', 'expired', 'failed', 'cancelled')""")
    # verify-ledger's own count of messages charged twice (its check no_double_charge), and its verdict.
    verdict = open(verify_file).read().splitlines()
    double_charged = next(int(line.split()[2]) for line in verdict if line.split()[1:2] == ["no_double_charge"])
    invariants = "ok" if "invariants=ok" in verdict else "violated"
    status, taken = call("GET", f"{sim}/_sim/messages", timeout=600)
    references = {}
    for message in taken if isinstance(taken, list) else taken.get("messages", taken.get("items", [])):
        reference = message.get("reference")
        if reference:
            references[reference] = references.get(reference, 0) + 1
    duplicate_sends = sum(count - 1 for count in references.values() if count > 1)
    problems += [f"message {r} reached the simulator {c} times" for r, c in references.items() if c > 1][:5]
    never_sent = [m for m in psql(url, "SELECT id FROM message WHERE status IN ('delivered', 'not_delivered', 'rejected')")
                  if m not in references]
    problems += [f"message {m} settled but never reached the simulator" for m in never_sent[:5]]
    problems += [f"message {m} not in a final state" for m in not_final[:5]]
    # Messages whose doubt could not be resolved before their deadline: failed unsent and refunded (where the
    # guarantee ends, docs/sending.md); not a failure of the suite, but said.
    failed_in_doubt = int(psql(url, "SELECT count(*) FROM message WHERE status = 'failed' AND status_detail LIKE '%in doubt, not sent again%'")[0])
    for problem in problems:
        print("  " + problem, file=sys.stderr)
    print(f"accepted={len(accepted_messages)} lost={lost} double_accepted={double_accepted} "
          f"double_charged={double_charged} duplicate_sends={duplicate_sends} invariants={invariants}"
          + (f" not_final={len(not_final)}" if not_final else "")
          + (f" undecided={undecided}" if undecided else "")
          + (f" settled_unsent={len(never_sent)}" if never_sent else "")
          + (f" failed_in_doubt={failed_in_doubt}" if failed_in_doubt else ""))
    ok = (lost == 0 and double_accepted == 0 and double_charged == 0 and duplicate_sends == 0 and invariants == "ok"
          and not not_final and not undecided and not never_sent)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup(*arguments)
    elif command == "load":
        load(arguments[0], float(arguments[1]), int(arguments[2]), int(arguments[3]), arguments[4], arguments[5:])
    elif command == "check":
        check(*arguments)
    else:
        sys.exit(f"unknown command {command}")
