//! A test driver for BPMN processes over HTTP (issue 16): deploys a model, starts instances and
//! works them as their outside world would: a worker activates jobs and completes them or throws
//! BPMN errors through the job API, messages are published, a person completes native user tasks,
//! and time passes to the next timer.

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::repo_root;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A Camunda Modeler file of the shared corpus (`shared/fixtures/bpmn-modeler`).
pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        repo_root()
            .join("../shared/fixtures/bpmn-modeler")
            .join(name),
    )
    .unwrap()
}

/// What a worker answers a job with.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Completes the job with these variables.
    Complete(Value),
    /// Throws a BPMN error with this code, message and variables.
    Throw {
        code: &'static str,
        message: &'static str,
        variables: Value,
    },
}

impl From<Value> for Reply {
    fn from(variables: Value) -> Reply {
        Reply::Complete(variables)
    }
}

/// One deployed model in a fresh app, with an operator and a worker of tenant `acme`.
pub(crate) struct Run {
    pub(crate) app: TestApp,
    pub(crate) operator: String,
    pub(crate) worker: String,
}

impl Run {
    /// Deploys `xml` (job types the platform does not know are allowed).
    pub(crate) async fn deploy(xml: &str) -> Run {
        Run::deploy_on(TestApp::spawn().await, xml).await
    }

    /// Deploys the files (name, content) together as one deployment, in a fresh app.
    pub(crate) async fn deploy_together(files: &[(&str, &str)]) -> Run {
        let app = TestApp::spawn().await;
        let operator = app.token("acme", &[Role::Operator]);
        let deployed =
            deploy_together(&app, &operator, "?allow_unsupported_job_types=true", files).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
        let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
        Run {
            app,
            operator,
            worker,
        }
    }

    /// [`Run::deploy`] on an app already running (with decisions deployed first, say).
    pub(crate) async fn deploy_on(app: TestApp, xml: &str) -> Run {
        let operator = app.token("acme", &[Role::Operator]);
        let deployed = deploy_bpmn(&app, &operator, "?allow_unsupported_job_types=true", xml).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
        let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
        Run {
            app,
            operator,
            worker,
        }
    }

    /// Starts an instance of `process` at its none start event; its id.
    pub(crate) async fn start(&self, process: &str, variables: Value) -> String {
        let started = post(
            &self.app,
            &self.operator,
            "/v1/process-instances",
            &json!({ "bpmn_process_id": process, "variables": variables }),
            None,
        )
        .await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
        started.body["process_instance_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The instance's detail: status, variables, jobs, incidents, history.
    pub(crate) async fn instance(&self, id: &str) -> Value {
        let i = get(
            &self.app,
            &self.operator,
            &format!("/v1/process-instances/{id}"),
        )
        .await;
        assert_eq!(i.status, StatusCode::OK, "{}", i.body);
        i.body
    }

    /// Activates up to 10 jobs of `job_type` (no wait).
    pub(crate) async fn jobs(&self, job_type: &str) -> Vec<Value> {
        let a = post(
            &self.app,
            &self.worker,
            "/v1/jobs/activation",
            &json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 10 }),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body["jobs"].as_array().unwrap().clone()
    }

    /// Activates the one job of `job_type` there is (fails when there is none, or more).
    pub(crate) async fn job(&self, job_type: &str) -> Value {
        let mut jobs = self.jobs(job_type).await;
        assert_eq!(jobs.len(), 1, "one {job_type} job: {jobs:?}");
        jobs.remove(0)
    }

    pub(crate) async fn complete(&self, job: &Value, variables: Value) {
        let done = post(
            &self.app,
            &self.worker,
            &format!("/v1/jobs/{}/completion", job["job_id"].as_str().unwrap()),
            &json!({ "variables": variables }),
            None,
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    }

    /// Throws a BPMN error from `job` (caught by a boundary event, or an incident).
    pub(crate) async fn throw_error(
        &self,
        job: &Value,
        code: &str,
        message: &str,
        variables: Value,
    ) {
        let thrown = post(
            &self.app,
            &self.worker,
            &format!("/v1/jobs/{}/error", job["job_id"].as_str().unwrap()),
            &json!({ "error_code": code, "error_message": message, "variables": variables }),
            None,
        )
        .await;
        assert_eq!(thrown.status, StatusCode::OK, "{}", thrown.body);
    }

    /// Fails `job` as a worker whose call failed: it is retried with `retries` left (at once).
    pub(crate) async fn fail(&self, job: &Value, retries: i32, message: &str) {
        let failed = post(
            &self.app,
            &self.worker,
            &format!("/v1/jobs/{}/failure", job["job_id"].as_str().unwrap()),
            &json!({ "retries": retries, "error_message": message }),
            None,
        )
        .await;
        assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    }

    /// Answers `job` as `reply` says.
    pub(crate) async fn reply(&self, job: &Value, reply: Reply) {
        match reply {
            Reply::Complete(variables) => self.complete(job, variables).await,
            Reply::Throw {
                code,
                message,
                variables,
            } => self.throw_error(job, code, message, variables).await,
        }
    }

    /// Publishes a message (as an operator); what became of it (`outcome`, and the instance it
    /// correlated to or started).
    pub(crate) async fn publish(
        &self,
        name: &str,
        correlation_key: &str,
        time_to_live_ms: u64,
        variables: Value,
    ) -> Value {
        let published = post(
            &self.app,
            &self.operator,
            "/v1/messages",
            &json!({ "name": name, "correlation_key": correlation_key,
                     "time_to_live_ms": time_to_live_ms, "variables": variables }),
            None,
        )
        .await;
        assert_eq!(published.status, StatusCode::OK, "{}", published.body);
        published.body
    }

    /// The instance's one open native user task is handed to `person` by the operator, who then
    /// finds it in their list and completes it with `variables`. The task as `person` saw it.
    pub(crate) async fn complete_user_task(
        &self,
        instance: &str,
        person: &str,
        variables: Value,
    ) -> Value {
        let pool = self.app.db.owner_pool().await;
        let open: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT user_task_id FROM user_task WHERE process_instance_id = $1::uuid AND status = 'created'",
        )
        .bind(instance)
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(open.len(), 1, "one open user task in {instance}");
        let id = open[0];
        let assigned = post(
            &self.app,
            &self.operator,
            &format!("/v1/user-tasks/{id}/assignment"),
            &json!({ "assignee": person }),
            None,
        )
        .await;
        assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
        let token = self.app.token_for(person, "acme", &[Role::Sales]);
        let mine = get(&self.app, &token, "/v1/user-tasks").await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        let task = mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["user_task_id"] == json!(id))
            .unwrap_or_else(|| panic!("{person} does not see task {id}: {}", mine.body))
            .clone();
        let done = post(
            &self.app,
            &token,
            &format!("/v1/user-tasks/{id}/completion"),
            &json!({ "variables": variables }),
            None,
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        task
    }

    /// Time passes to the next timer: the earliest (and any due with it) fires. How many fired.
    pub(crate) async fn fire_timers(&self) -> usize {
        let owner = self.app.db.owner_pool().await;
        sqlx::query(
            "UPDATE timer SET due_at = now() - interval '1 second' \
             WHERE due_at = (SELECT min(due_at) FROM timer)",
        )
        .execute(&owner)
        .await
        .unwrap();
        owner.close().await;
        let pool = self.app.db.app_pool().await;
        let fired = cpq_workflow::instances::fire_due_timers(&pool, 100).await;
        pool.close().await;
        fired
    }

    /// Answers every open job of `job_types` with what `answer` gives for it (given the job
    /// type and the job's variables), round after round, until none is open. Returns the job
    /// types in the order their jobs were answered; a job that threw a BPMN error is `type!code`.
    pub(crate) async fn work<R: Into<Reply>>(
        &self,
        job_types: &[&str],
        mut answer: impl FnMut(&str, &Value) -> R,
    ) -> Vec<String> {
        let mut done = Vec::new();
        loop {
            let mut progressed = false;
            for t in job_types {
                for job in self.jobs(t).await {
                    let reply = answer(t, &job["variables"]).into();
                    done.push(match &reply {
                        Reply::Complete(_) => (*t).to_owned(),
                        Reply::Throw { code, .. } => format!("{t}!{code}"),
                    });
                    self.reply(&job, reply).await;
                    progressed = true;
                }
            }
            if !progressed {
                return done;
            }
        }
    }

    /// Drives `instance` to its end: works its jobs (see [`Run::work`]) and, when none is open,
    /// fires the next timers. Returns the job types in the order their jobs were answered.
    pub(crate) async fn drive<R: Into<Reply>>(
        &self,
        instance: &str,
        job_types: &[&str],
        mut answer: impl FnMut(&str, &Value) -> R,
    ) -> Vec<String> {
        let mut done = Vec::new();
        for _ in 0..20 {
            if self.instance(instance).await["status"] == "completed" {
                return done;
            }
            let round = self.work(job_types, &mut answer).await;
            if round.is_empty() {
                self.fire_timers().await;
            }
            done.extend(round);
        }
        panic!(
            "{instance} did not complete: {}",
            self.instance(instance).await
        );
    }
}

/// The jobs an instance's detail lists, in the order they were created: `type@element: status`.
pub(crate) fn job_trail(detail: &Value) -> Vec<String> {
    detail["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{}@{}: {}",
                j["job_type"].as_str().unwrap(),
                j["element_id"].as_str().unwrap(),
                j["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// The elements the instance is at, by id (sorted).
pub(crate) fn active_elements(detail: &Value) -> Vec<String> {
    let mut ids: Vec<String> = detail["active_elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["element_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Asserts the instance ended (`completed`) with no incident.
pub(crate) fn assert_completed_cleanly(detail: &Value) {
    assert_eq!(detail["status"], "completed", "{detail}");
    assert!(
        detail["incidents"].as_array().unwrap().is_empty(),
        "{detail}"
    );
}

/// The commands in the instance's history, by name (a timer's with its timer id).
pub(crate) fn commands(detail: &Value) -> Vec<String> {
    detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let c = &h["command"];
            match c["timer_id"].as_str() {
                Some(timer) => format!("{}:{timer}", c["command"].as_str().unwrap_or_default()),
                None => c["command"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}
