//! Workflow: process definitions, instances, jobs, user tasks, worker groups and routing.
