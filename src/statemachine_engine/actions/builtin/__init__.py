"""Built-in actions, one module each; the registry maps type names to these classes."""

from __future__ import annotations

BUILTINS: dict[str, str] = {
    "bash": "bash:BashAction",
    "log": "log:LogAction",
    "activity_log": "log:ActivityLogAction",
    "sleep": "sleep:SleepAction",
    "check_database_queue": "queue:CheckDatabaseQueueAction",
    "claim_job": "queue:ClaimJobAction",
    "complete_job": "queue:CompleteJobAction",
    "fail_job": "queue:FailJobAction",
    "get_pending_jobs": "jobs:GetPendingJobsAction",
    "wait_for_jobs": "jobs:WaitForJobsAction",
    "check_events": "events:CheckEventsAction",
    "clear_events": "events:ClearEventsAction",
    "send_event": "events:SendEventAction",
    "check_machine_state": "machines:CheckMachineStateAction",
    "start_fsm": "machines:StartFsmAction",
    "set_context": "context:SetContextAction",
    "add_to_list": "lists:AddToListAction",
    "pop_from_list": "lists:PopFromListAction",
}
