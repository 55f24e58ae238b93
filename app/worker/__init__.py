"""The worker process: what runs a queued training job, and the processes that run it.

``runtime`` (the job function: claim, train under audit and oversight, settle), ``local`` (the
local worker draining the jobs table when there is no Redis, and the child process ``serve``
starts), ``settings`` (the ARQ ``WorkerSettings``, with the compliance cron) and ``commands``
(``rlhf-audit worker``). It ties the domains together (jobs, datasets, oversight, compliance,
trainers), and none of them imports it: the job functions belong to the application, the queue
library only runs them.
"""
