#!/usr/bin/env python3
"""Clients for the operations drills (scripts/pitr-drill.sh, scripts/upgrade-drill.sh, scripts/pgbouncer-check.sh,
scripts/replica-check.sh; docs/operations.md).

  setup  API SIM ADMIN_KEY CALLBACK_BASE   the fault suite's tenant (fault_load.py setup); prints its state as JSON
  send   STATE API COUNT OUT PHASE          COUNT single sends one after another; each accepted message goes to OUT
                                           as a JSON line {id, phase, acceptedAt}; exits 1 on any refusal or error
  load   STATE STOP_FILE OUT API...         sends one after another, round robin over the APIs, until STOP_FILE
                                           exists; every answer goes to OUT ({api, status, id | problem}); prints
                                           "sent=N failed=M" and exits 1 when M > 0
  ids    OUT [PHASE...]                     the message ids of OUT (of those phases), one a line, sorted

Standard library only. Every send carries an Idempotency-Key of its own.
"""
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_load import call, setup  # noqa: E402


def send_once(state, api, text):
    body = {"sender": "Faults", "text": text, "recipients": ["+3161%07d" % (uuid.uuid4().int % 10 ** 7)]}
    return call("POST", f"{api}/sub-accounts/{state['subAccount']}/messages", state["subAccountKey"], body,
                {"Idempotency-Key": str(uuid.uuid4())}, timeout=30)


def send(state_file, api, count, out_file, phase):
    state = json.load(open(state_file))
    with open(out_file, "a") as out:
        for number in range(int(count)):
            status, answer = send_once(state, api, f"drill {phase} {number}")
            if status != 201 and status != 202 and status != 200:
                sys.exit(f"send {phase} {number} answered {status}: {answer}")
            for message in answer["messages"]:
                out.write(json.dumps({"id": message["id"], "phase": phase,
                                      "acceptedAt": datetime.now(timezone.utc).isoformat()}) + "\n")
            out.flush()


def load(state_file, stop_file, out_file, apis):
    state = json.load(open(state_file))
    sent = failed = 0
    with open(out_file, "a") as out:
        while not os.path.exists(stop_file):
            api = apis[sent % len(apis)]
            try:
                status, answer = send_once(state, api, f"drill load {sent}")
            except Exception as error:  # a refused or reset connection is a failed send here
                status, answer = None, str(error)
            sent += 1
            if status in (200, 201, 202):
                out.write(json.dumps({"api": api, "status": status, "id": answer["messages"][0]["id"]}) + "\n")
            else:
                failed += 1
                out.write(json.dumps({"api": api, "status": status, "problem": str(answer)[:300]}) + "\n")
            out.flush()
            time.sleep(0.02)
    print(f"sent={sent} failed={failed}")
    sys.exit(1 if failed else 0)


def ids(out_file, phases):
    found = set()
    for line in open(out_file):
        record = json.loads(line)
        if "id" in record and (not phases or record.get("phase") in phases):
            found.add(record["id"])
    for identifier in sorted(found):
        print(identifier)


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup(*arguments)
    elif command == "send":
        send(*arguments)
    elif command == "load":
        load(arguments[0], arguments[1], arguments[2], arguments[3:])
    elif command == "ids":
        ids(arguments[0], arguments[1:])
    else:
        sys.exit(__doc__)
