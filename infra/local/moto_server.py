"""moto's server, with DynamoDB requests one at a time, for as long as its parent process lives.

    python moto_server.py PORT [access-log]

moto's DynamoDB backend is not safe under concurrent requests: a TransactWriteItems deep-copies
the table that another request is changing, fails ("dictionary changed size during iteration")
and leaves its caller waiting for an answer that never comes. This server takes requests on any
number of connections, as moto's own does, and serves DynamoDB's one after the other. Only
DynamoDB's: an SNS Publish is delivered to its subscribers inside the request, and a subscriber
may call moto back, which a lock around every request would deadlock. It exits when its parent
does, however that ends. With ``FOLLOWUP_MOTO_IAM`` set, moto's IAM check is handed the resource
each call names (``moto_iam.py``); the check itself starts when ``POST /moto-api/reset-auth``
sets the count of unchecked calls (the topology does, once its stack and roles exist). Used by
the topology (``topology/procs.py``) and by the Rust tests' moto (``shared/tests/common/moto.rs``).
"""
import logging
import os
import sys
import threading
import time


def exit_with_parent() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    port = int(sys.argv[1])
    threading.Thread(target=exit_with_parent, daemon=True).start()
    if sys.argv[2:3] != ["access-log"]:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    iam = bool(os.environ.get("FOLLOWUP_MOTO_IAM"))
    if iam:
        import moto_iam

        moto_iam.install()

    moto_app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def app(environ, start_response):
        # Every DynamoDB call is a JSON POST naming its operation in X-Amz-Target.
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return moto_app(environ, start_response)
        with dynamodb:
            return list(moto_app(environ, start_response))

    run_simple("127.0.0.1", port, moto_iam.keep_raw_body(app) if iam else app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
