"""The task engine: Huey (SQLite embedded, Redis when REDIS_URL is set) runs every background job.

queue builds the Huey instance; tasks registers the jobs on it (scheduled checks, check-all runs, the
scheduler's tick, daily maintenance); runs and scheduler hold the database side of those jobs; consumer
starts consumers inside an app process or as `manage.py worker`.
"""
