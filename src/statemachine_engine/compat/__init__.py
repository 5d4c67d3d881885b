"""The released 1.0 Python API as thin shims over 2.0, each with a DeprecationWarning:
`engine` (`StateMachineEngine(machine_name=…)`, `load_config`, `execute_state_machine`),
`models` (`get_database()`, `get_job_model()` and siblings). The 1.0 import paths
(`statemachine_engine.core.engine`, `statemachine_engine.database.models`,
`statemachine_engine.core.action_loader`) resolve to them."""
