"""Result and config keys every Trainable shares (no torch: a replay's actors import only this)."""

#: Result key holding why a trial failed (absent when it did not).
FAILURE = "failure"
#: Result key holding why a trial's model breaks a sweep's cost limits (absent when it does not).
INFEASIBLE = "infeasible"
#: Result key holding why the model's costs could not be measured (they are NaN; absent when
#: they were measured).
COSTS_ERROR = "costs_error"
#: Config key naming a trial's job when the Trainable is given ``jobs``.
JOB = "job"

__all__ = ["COSTS_ERROR", "FAILURE", "INFEASIBLE", "JOB"]
