"""template.yaml's topology on one machine: moto, the six Lambda functions behind a Runtime API
emulator, the HTTP API, Scheduler and the EventBridge rules (see infra/local/README.md)."""
