"""The released package's `statemachine_engine.ui` path; the UI lives in `monitoring`."""
