//! The deployment template keeps the promises docs/contracts.md makes about running in AWS: the retry
//! budget fits the function timeout, SQS never hands out a message that is still being worked
//! on (for every batching window allowed), every batching pair the rules accept is one AWS
//! accepts, a CleverTap account never sees more than its 15 concurrent requests, every role holds
//! exactly what it needs, a day-long CleverTap outage dead-letters nothing while every message
//! still ends inside the queue's retention, and operators get the alarms, dashboard, saved
//! queries, logs, parameters and outputs the README describes (every metric an alarm or widget
//! names is one `metrics.rs` emits or AWS publishes for the resource). cfn-lint (`make validate`) checks the template's shape; these tests check its
//! arithmetic and intent, reading every number from `template.yaml` itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::{Mapping, Value};

use crate::support::repo_root;

/// CleverTap's limit on concurrent requests per account (docs/clevertap-api.md, "Limits").
const CLEVERTAP_MAX_CONCURRENT_REQUESTS: u64 = 15;
/// The smallest safety margin kept before the invocation deadline (docs/contracts.md §5).
const SAFETY_MARGIN_SECONDS: u64 = 3;
/// Time left after the retry budget and margin to dead-letter rejected events (a few SQS
/// `SendMessageBatch` calls, each under an SDK operation timeout).
const DEAD_LETTERING_SECONDS: u64 = 5;
/// AWS's advice for SQS event sources: visibility timeout >= 6 x function timeout (+ window).
const VISIBILITY_TIMEOUT_FACTOR: u64 = 6;
/// The least number of receives before SQS gives up on a message.
const MIN_MAX_RECEIVE_COUNT: u64 = 5;
/// AWS's smallest allowed `ScalingConfig.MaximumConcurrency`.
const MIN_SQS_MAXIMUM_CONCURRENCY: u64 = 2;
/// Memory range for a Rust function that mostly waits on the network.
const MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=256;
/// The binary the template deploys (Cargo.toml `[[bin]]`).
const BINARY: &str = "rudder-clevertap";
/// Every environment variable the function reads in production (docs/contracts.md §7).
const FUNCTION_ENV_VARS: [&str; 17] = [
    "SECRET_PREFIX",
    "DEFAULT_DESTINATION_ID",
    "DEAD_LETTER_QUEUE_URL",
    "MAX_CONCURRENT_REQUESTS",
    "RETRY_BUDGET_SECONDS",
    "SECRETS_TTL_SECONDS",
    "MAX_BODY_BYTES",
    "SETTINGS_CACHE_SIZE",
    "VISIBILITY_BACKOFF_BASE_SECONDS",
    "VISIBILITY_BACKOFF_CAP_SECONDS",
    "VISIBILITY_CONFIG_ERROR_SECONDS",
    "CIRCUIT_FAILURE_THRESHOLD",
    "CIRCUIT_COOLDOWN_SECONDS",
    "SECRETS_STALE_SECONDS",
    "METRICS_NAMESPACE",
    "METRICS_PER_DESTINATION",
    "RUST_LOG",
];
/// The variables only the webhook reads (docs/contracts.md §7).
const WEBHOOK_ENV_VARS: [&str; 4] = [
    "WEBHOOK_MODE",
    "EVENTS_QUEUE_URL",
    "WEBHOOK_DESTINATION_IDS",
    "WEBHOOK_TOKEN_REFRESH_SECONDS",
];
/// The CleverTap outage a deployment must outlive without dead-lettering anything.
const OUTAGE_SECONDS: u64 = 24 * 3600;
/// Room kept between the last possible receive and the end of the queue's retention, for
/// polling lag: a message past its retention is deleted, which would be a loss.
const RETENTION_MARGIN_SECONDS: u64 = 12 * 3600;
/// A configuration error (a missing secret) must reach the dead-letter queue within this.
const CONFIGURATION_ERROR_DEAD_LETTERED_WITHIN_SECONDS: u64 = 3600;
/// Variables that exist for tests only and must never be deployed.
const TEST_ONLY_ENV_VARS: [&str; 1] = ["CLEVERTAP_ENDPOINT"];
/// The most messages Lambda takes from a FIFO queue per batch (AWS's limit).
const FIFO_MAX_BATCH_SIZE: u64 = 10;
/// The most messages Lambda takes from a standard queue per batch (AWS's limit).
const STANDARD_MAX_BATCH_SIZE: u64 = 10_000;
/// The longest batching window AWS allows, in seconds.
const MAX_BATCHING_WINDOW_SECONDS: u64 = 300;
/// AWS: a standard queue's batches of more than this many messages need a window of 1 s or more.
const MAX_BATCH_SIZE_WITHOUT_WINDOW: u64 = 10;
/// Batch sizes the batching tests deploy: both ends, both sides of 10, and the default.
const SAMPLE_BATCH_SIZES: [u64; 8] = [1, 2, 9, 10, 11, 100, 9_999, 10_000];
/// SQS's longest queue name, `.fifo` included.
const MAX_QUEUE_NAME_LEN: usize = 80;
/// The stack name `samconfig.toml` deploys.
const STACK_NAME: &str = "rudder-clevertap";

/// `template.yaml`, parsed as plain data, with helpers that follow CloudFormation's references.
#[derive(Clone)]
struct Template(Value);

impl Template {
    fn load() -> Self {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
        Self(serde_yaml_ng::from_str(&text).expect("template.yaml is valid YAML"))
    }

    /// The same template with some parameters' defaults replaced, as a deploy would set them.
    fn with_parameters(&self, values: &[(&str, &str)]) -> Self {
        let mut value = self.0.clone();
        for (name, given) in values {
            let parameter = value["Parameters"]
                .get_mut(*name)
                .and_then(Value::as_mapping_mut)
                .unwrap_or_else(|| panic!("parameter {name} is declared"));
            parameter.insert("Default".into(), Value::String((*given).to_owned()));
        }
        Self(value)
    }

    fn resource(&self, id: &str) -> &Value {
        let resource = &self.0["Resources"][id];
        assert!(resource.is_mapping(), "resource {id} exists");
        resource
    }

    fn resources_of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        let resources = self.0["Resources"]
            .as_mapping()
            .expect("Resources is a map");
        resources
            .iter()
            .filter(|(_, resource)| resource["Type"] == kind)
            .map(|(id, resource)| (id.as_str().expect("ids are strings").to_owned(), resource))
            .collect()
    }

    fn function_ids(&self) -> Vec<String> {
        let ids: Vec<String> = self
            .resources_of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert!(!ids.is_empty(), "the template declares functions");
        ids
    }

    /// A function's properties with `Globals.Function` merged in the way SAM merges them:
    /// maps merge key by key, anything else set on the function wins.
    fn function(&self, id: &str) -> Value {
        let own = &self.resource(id)["Properties"];
        let globals = &self.0["Globals"]["Function"];
        merge(globals, own)
    }

    fn env(&self, function: &str) -> Mapping {
        self.function(function)["Environment"]["Variables"]
            .as_mapping()
            .cloned()
            .unwrap_or_else(|| panic!("{function} has environment variables"))
    }

    fn env_var(&self, function: &str, name: &str) -> Value {
        self.env(function)
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{function} sets {name}"))
    }

    /// The SQS event sources of a function (empty for the webhook).
    fn sqs_events(&self, function: &str) -> Vec<Value> {
        match self.function(function)["Events"].as_mapping() {
            None => Vec::new(),
            Some(events) => events
                .values()
                .filter(|event| event["Type"] == "SQS")
                .map(|event| event["Properties"].clone())
                .collect(),
        }
    }

    /// A value with a `Ref` to a parameter replaced by that parameter's default, and an
    /// `Fn::If` by the branch its condition picks (`Null` for `AWS::NoValue`).
    fn resolve(&self, value: &Value) -> Value {
        if value["Ref"] == "AWS::NoValue" {
            return Value::Null;
        }
        if let Some(name) = value["Ref"].as_str()
            && let Some(parameter) = self.0["Parameters"].get(name)
        {
            let default = &parameter["Default"];
            assert!(!default.is_null(), "parameter {name} has a default");
            return default.clone();
        }
        if let Some(args) = value.get("Fn::FindInMap").and_then(Value::as_sequence) {
            let key = |n: usize| -> String {
                match self.resolve(&args[n]) {
                    Value::String(text) => text,
                    Value::Number(number) => number.to_string(),
                    other => panic!("Fn::FindInMap key {other:?} is not a scalar"),
                }
            };
            let (map, top, second) = (key(0), key(1), key(2));
            let found = &self.0["Mappings"][map.as_str()][top.as_str()][second.as_str()];
            assert!(!found.is_null(), "Mappings {map} has {top} / {second}");
            return found.clone();
        }
        if let Some(branches) = value.get("Fn::If").and_then(Value::as_sequence) {
            let condition = branches[0].as_str().expect("Fn::If names a condition");
            let picked = if self.condition(condition) {
                &branches[1]
            } else {
                &branches[2]
            };
            return self.resolve(picked);
        }
        value.clone()
    }

    /// The parts of `{Fn::If: [condition, then, otherwise]}`.
    fn fn_if(value: &Value) -> Option<(&str, &Value, &Value)> {
        let args = value
            .get("Fn::If")?
            .as_sequence()
            .expect("Fn::If takes a list");
        assert_eq!(args.len(), 3, "Fn::If takes a condition and two values");
        let condition = args[0].as_str().expect("Fn::If names a condition");
        Some((condition, &args[1], &args[2]))
    }

    /// A condition of the Conditions section, for this template's parameter defaults.
    fn condition(&self, name: &str) -> bool {
        let condition = &self.0["Conditions"][name];
        assert!(condition.is_mapping(), "condition {name} is declared");
        self.evaluate(condition)
    }

    /// `value` as CloudFormation deploys it for this template's parameter defaults: each
    /// `Fn::If` replaced by the branch its condition picks, and each `AWS::NoValue` left out
    /// (`None` when `value` itself is one).
    fn deployed(&self, value: &Value) -> Option<Value> {
        if let Some((condition, then, otherwise)) = Self::fn_if(value) {
            return self.deployed(if self.condition(condition) {
                then
            } else {
                otherwise
            });
        }
        if value["Ref"] == "AWS::NoValue" {
            return None;
        }
        Some(match value {
            Value::Mapping(map) => Value::Mapping(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.deployed(v)?)))
                    .collect(),
            ),
            Value::Sequence(items) => {
                Value::Sequence(items.iter().filter_map(|v| self.deployed(v)).collect())
            }
            other => other.clone(),
        })
    }

    /// A resource's properties as deployed (see [`Template::deployed`]).
    fn deployed_properties(&self, id: &str) -> Value {
        self.deployed(&self.resource(id)["Properties"])
            .unwrap_or_else(|| panic!("{id} has properties"))
    }

    /// A number that may be left out (`AWS::NoValue`, or absent): `None` then.
    fn optional_number(&self, value: &Value) -> Option<u64> {
        self.deployed(value)
            .filter(|v| !v.is_null())
            .map(|v| self.number(&v))
    }

    /// The same template once for each allowed `QueueType`, with that value.
    fn each_queue_type(&self) -> Vec<(String, Self)> {
        self.allowed_values("QueueType")
            .into_iter()
            .map(|queue_type| {
                let deployed = self.with_parameters(&[("QueueType", &queue_type)]);
                (queue_type, deployed)
            })
            .collect()
    }

    /// The same template for each allowed `QueueType`, each of [`SAMPLE_BATCH_SIZES`] and each
    /// allowed batching window: (queue type, `QueueBatchSize`, window, template).
    fn each_batching(&self) -> Vec<(String, u64, u64, Self)> {
        let mut all = Vec::new();
        for (queue_type, typed) in self.each_queue_type() {
            for size in SAMPLE_BATCH_SIZES {
                for window in self.allowed_values("QueueMaximumBatchingWindowInSeconds") {
                    let deployed = typed.with_parameters(&[
                        ("QueueBatchSize", &size.to_string()),
                        ("QueueMaximumBatchingWindowInSeconds", &window),
                    ]);
                    let window = window.parse().expect("a whole number of seconds");
                    all.push((queue_type.clone(), size, window, deployed));
                }
            }
        }
        all
    }

    /// A function's environment variable as deployed with these defaults (`None` when an
    /// `Fn::If` leaves it out).
    fn env_value(&self, function: &str, name: &str) -> Option<Value> {
        let value = self.resolve(&self.env(function).get(name).cloned()?);
        (!value.is_null()).then_some(value)
    }

    /// Whether a function runs the webhook in queue mode (it then makes no CleverTap request).
    fn queue_mode(&self, function: &str) -> bool {
        self.env_value(function, "WEBHOOK_MODE")
            .is_some_and(|mode| mode == "queue")
    }

    /// A number, literal, numeric string (as environment variables are) or parameter default.
    fn number(&self, value: &Value) -> u64 {
        let resolved = self.resolve(value);
        resolved
            .as_u64()
            .or_else(|| resolved.as_str().and_then(|text| text.parse().ok()))
            .unwrap_or_else(|| panic!("{value:?} resolves to a whole number"))
    }

    /// The logical id behind `{Ref: X}` or `{Fn::GetAtt: [X, attribute]}`.
    fn target(value: &Value, attribute: Option<&str>) -> String {
        match attribute {
            None => value["Ref"].as_str(),
            Some(attribute) => {
                let get_att = &value["Fn::GetAtt"];
                assert_eq!(get_att[1], attribute, "{value:?} reads {attribute}");
                get_att[0].as_str()
            }
        }
        .unwrap_or_else(|| panic!("{value:?} refers to a resource"))
        .to_owned()
    }

    /// The queue the functions dead-letter to, from `DEAD_LETTER_QUEUE_URL`.
    fn dead_letter_queue(&self) -> String {
        let ids: BTreeSet<String> = self
            .function_ids()
            .iter()
            .map(|function| Self::target(&self.env_var(function, "DEAD_LETTER_QUEUE_URL"), None))
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "every function dead-letters to the same queue"
        );
        ids.into_iter().next().expect("one queue")
    }

    /// Most CleverTap requests the deployment can have in flight for one account: for each
    /// function, its most concurrent instances times `MAX_CONCURRENT_REQUESTS`. A function with
    /// no bound on its instances fails the test.
    fn worst_case_concurrent_requests(&self) -> u64 {
        self.function_ids()
            .iter()
            .map(|id| {
                let function = self.function(id);
                let per_instance = if self.queue_mode(id) {
                    0 // queue mode only puts events on the queue
                } else {
                    self.number(&self.env_var(id, "MAX_CONCURRENT_REQUESTS"))
                };
                let reserved = function
                    .get("ReservedConcurrentExecutions")
                    .map(|reserved| self.number(reserved));
                let has_url = function["FunctionUrlConfig"].is_mapping();
                assert!(
                    !has_url || reserved.is_some(),
                    "{id} has a Function URL, so it needs ReservedConcurrentExecutions"
                );
                let sqs_instances: u64 = self
                    .sqs_events(id)
                    .iter()
                    .map(|event| self.number(&event["ScalingConfig"]["MaximumConcurrency"]))
                    .sum();
                // Reserved concurrency bounds all of a function's triggers together.
                let instances = match reserved {
                    Some(reserved) if has_url => reserved,
                    Some(reserved) => reserved.min(sqs_instances),
                    None => sqs_instances,
                };
                instances * per_instance
            })
            .sum()
    }

    /// The Rules section, evaluated for the parameter values of this template's defaults.
    fn rules_accept_defaults(&self) -> bool {
        let Some(rules) = self.0["Rules"].as_mapping() else {
            return true;
        };
        rules.values().all(|rule| {
            let applies = rule.get("RuleCondition").is_none_or(|c| self.evaluate(c));
            let assertions = rule["Assertions"]
                .as_sequence()
                .expect("Assertions is a list");
            !applies || assertions.iter().all(|a| self.evaluate(&a["Assert"]))
        })
    }

    /// Evaluates the rule functions this template uses; anything else fails the test.
    fn evaluate(&self, condition: &Value) -> bool {
        if let Some(name) = condition["Condition"].as_str() {
            return self.condition(name);
        }
        let (function, args) = condition
            .as_mapping()
            .and_then(|map| map.iter().next())
            .expect("a rule function is a one-key map");
        if function == "Condition" {
            return self.condition(args.as_str().expect("Condition names a condition"));
        }
        let args = args
            .as_sequence()
            .expect("rule function arguments are a list");
        let text = |value: &Value| -> String {
            let resolved = self.resolve(value);
            match resolved {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                other => panic!("{other:?} is not a scalar"),
            }
        };
        match function.as_str().expect("function names are strings") {
            "Fn::Equals" => text(&args[0]) == text(&args[1]),
            "Fn::Contains" => {
                let needle = text(&args[1]);
                let haystack = args[0].as_sequence().expect("Fn::Contains takes a list");
                haystack.iter().any(|item| text(item) == needle)
            }
            "Fn::And" => args.iter().all(|arg| self.evaluate(arg)),
            "Fn::Or" => args.iter().any(|arg| self.evaluate(arg)),
            "Fn::Not" => !self.evaluate(&args[0]),
            other => panic!("the test cannot evaluate rule function {other}"),
        }
    }

    /// Every value a Number parameter may take, from its AllowedValues.
    fn allowed_values(&self, parameter: &str) -> Vec<String> {
        self.0["Parameters"][parameter]["AllowedValues"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{parameter} lists AllowedValues"))
            .iter()
            .map(|value| match value {
                Value::Number(number) => number.to_string(),
                Value::String(text) => text.clone(),
                other => panic!("{other:?} is not a scalar"),
            })
            .collect()
    }
}

/// SAM's Globals merge: maps merge recursively, the function's own value wins otherwise.
fn merge(globals: &Value, own: &Value) -> Value {
    match (globals, own) {
        (Value::Mapping(globals), Value::Mapping(own)) => {
            let mut merged = globals.clone();
            for (key, value) in own {
                let combined = match globals.get(key) {
                    Some(global) => merge(global, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), combined);
            }
            Value::Mapping(merged)
        }
        (_, Value::Null) => globals.clone(),
        _ => own.clone(),
    }
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("test YAML parses")
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        single => vec![single.clone()],
    }
}

/// Every (action, resource) pair a role's inline policies allow, resources as YAML text; a
/// policy under `Fn::If` counts when its condition holds for the template's defaults.
fn role_grants(template: &Template, role: &Value) -> BTreeSet<(String, String)> {
    let mut grants = BTreeSet::new();
    let policies = role["Properties"]["Policies"]
        .as_sequence()
        .expect("a role lists inline Policies");
    for policy in policies.iter().map(|p| template.resolve(p)) {
        if policy.is_null() {
            continue;
        }
        let statements = policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("a policy lists statements");
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "statements only allow");
            assert!(statement["NotAction"].is_null() && statement["NotResource"].is_null());
            for action in as_list(&statement["Action"]) {
                let action = action.as_str().expect("actions are strings").to_owned();
                for resource in as_list(&statement["Resource"]) {
                    let resource = serde_yaml_ng::to_string(&resource).expect("serialises");
                    grants.insert((action.clone(), resource));
                }
            }
        }
    }
    grants
}

fn contains_tag(value: &Value) -> bool {
    match value {
        Value::Tagged(_) => true,
        Value::Sequence(items) => items.iter().any(contains_tag),
        Value::Mapping(map) => map.iter().any(|(k, v)| contains_tag(k) || contains_tag(v)),
        _ => false,
    }
}

#[test]
fn the_template_uses_only_long_form_intrinsics_so_every_value_is_plain_data() {
    let template = Template::load();
    assert!(
        !contains_tag(&template.0),
        "use Ref / Fn::Sub / Fn::GetAtt maps, not !Ref-style tags"
    );
    assert_eq!(template.0["Transform"], "AWS::Serverless-2016-10-31");
}

#[test]
fn there_is_a_queue_function_and_a_webhook_function_built_from_the_rust_binary() {
    let template = Template::load();
    let ids: BTreeSet<String> = template.function_ids().into_iter().collect();
    assert_eq!(
        ids,
        BTreeSet::from(["QueueFunction".into(), "WebhookFunction".into()])
    );
    for id in &ids {
        let metadata = &template.resource(id)["Metadata"];
        assert_eq!(metadata["BuildMethod"], "rust-cargolambda", "{id}");
        assert_eq!(metadata["BuildProperties"]["Binary"], BINARY, "{id}");
    }
}

#[test]
fn every_function_runs_on_provided_al2023_on_arm64_with_the_bootstrap_handler() {
    let template = Template::load();
    for id in template.function_ids() {
        let function = template.function(&id);
        assert_eq!(function["Runtime"], "provided.al2023", "{id}");
        let architectures = function["Architectures"].as_sequence().expect("a list");
        let resolved: Vec<Value> = architectures.iter().map(|a| template.resolve(a)).collect();
        assert_eq!(resolved, vec![Value::from("arm64")], "{id} (by default)");
        assert_eq!(function["Handler"], "bootstrap", "{id}");
        assert_eq!(function["CodeUri"], ".", "{id} builds from the crate root");
    }
}

#[test]
fn every_function_gets_between_128_and_256_mb_of_memory() {
    let template = Template::load();
    for id in template.function_ids() {
        let memory = template.number(&template.function(&id)["MemorySize"]);
        assert!(MEMORY_MB.contains(&memory), "{id} has {memory} MB");
    }
}

#[test]
fn the_timeout_fits_the_retry_budget_the_safety_margin_and_dead_lettering() {
    let template = Template::load();
    for id in template.function_ids() {
        let timeout = template.number(&template.function(&id)["Timeout"]);
        let budget = template.number(&template.env_var(&id, "RETRY_BUDGET_SECONDS"));
        let needed = budget + SAFETY_MARGIN_SECONDS + DEAD_LETTERING_SECONDS;
        assert!(timeout >= needed, "{id}: timeout {timeout} s < {needed} s");
    }
}

#[test]
fn the_queue_stays_invisible_for_six_function_timeouts_plus_the_batching_window() {
    // For every window the template allows, with each queue type and batch size: the queue's
    // own visibility timeout covers six function timeouts plus the window the trigger waits
    // (AWS's advice), and no more: it is also what a crashed batch, or a message whose
    // visibility change failed, waits before it comes back.
    let all = Template::load().each_batching();
    let mut checked = 0;
    for (queue_type, size, window_parameter, template) in &all {
        for id in template.function_ids() {
            let timeout = template.number(&template.function(&id)["Timeout"]);
            for event in template.sqs_events(&id) {
                let queue = template.resource(&Template::target(&event["Queue"], Some("Arn")));
                let visibility = template.number(&queue["Properties"]["VisibilityTimeout"]);
                let window = template
                    .optional_number(&event["MaximumBatchingWindowInSeconds"])
                    .unwrap_or(0);
                let needed = VISIBILITY_TIMEOUT_FACTOR * timeout + window;
                let context = format!(
                    "{queue_type}, QueueBatchSize {size}, window parameter {window_parameter} s, \
                     {id}: visibility {visibility} s, 6 x {timeout} s + {window} s = {needed} s"
                );
                assert!(visibility >= needed, "{context}");
                assert_eq!(visibility, needed, "{context}: longer than needed");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, all.len(), "exactly one SQS event source");
    // The mapping has an entry for each allowed window and no other.
    let template = Template::load();
    let mapped: Vec<String> = template.0["Mappings"]["BatchingWindowVisibility"]
        .as_mapping()
        .expect("a mapping per window")
        .keys()
        .map(|key| key.as_str().expect("keys are strings").to_owned())
        .collect();
    assert_eq!(
        mapped,
        template.allowed_values("QueueMaximumBatchingWindowInSeconds")
    );
    // With the defaults: 6 x 30 + 5, as the README and the header say.
    let queue = &template.resource("Queue")["Properties"];
    assert_eq!(template.number(&queue["VisibilityTimeout"]), 185);
    let fifo = template.with_parameters(&[("QueueType", "fifo")]);
    assert_eq!(
        fifo.number(&fifo.resource("Queue")["Properties"]["VisibilityTimeout"]),
        180,
        "FIFO has no window"
    );
}

#[test]
fn a_message_that_keeps_failing_moves_to_the_dead_letter_queue_after_at_least_five_receives() {
    let template = Template::load();
    let dead_letter_queue = template.dead_letter_queue();
    for id in template.function_ids() {
        for event in template.sqs_events(&id) {
            let queue = template.resource(&Template::target(&event["Queue"], Some("Arn")));
            let redrive = &queue["Properties"]["RedrivePolicy"];
            let count = &redrive["maxReceiveCount"];
            assert!(template.number(count) >= MIN_MAX_RECEIVE_COUNT);
            if let Some(parameter) = count["Ref"].as_str() {
                let min = &template.0["Parameters"][parameter]["MinValue"];
                assert!(
                    template.number(min) >= MIN_MAX_RECEIVE_COUNT,
                    "no allowed {parameter} is below {MIN_MAX_RECEIVE_COUNT}"
                );
            }
            // One queue: SQS's redrive and the function's rejections land in the same place.
            let target = Template::target(&redrive["deadLetterTargetArn"], Some("Arn"));
            assert_eq!(target, dead_letter_queue);
        }
    }
}

#[test]
fn the_dead_letter_queue_keeps_messages_longer_than_the_source_queue() {
    let template = Template::load();
    let retention =
        |id: &str| template.number(&template.resource(id)["Properties"]["MessageRetentionPeriod"]);
    let dead_letter_queue = template.dead_letter_queue();
    for event in template.sqs_events("QueueFunction") {
        let source = Template::target(&event["Queue"], Some("Arn"));
        assert!(retention(&dead_letter_queue) > retention(&source));
    }
}

#[test]
fn the_sqs_event_reports_batch_item_failures_and_sets_its_batching() {
    for (queue_type, template) in Template::load().each_queue_type() {
        let events = template.sqs_events("QueueFunction");
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            event["FunctionResponseTypes"],
            yaml("[ReportBatchItemFailures]")
        );
        assert!(
            template.number(&event["ScalingConfig"]["MaximumConcurrency"]) >= 2,
            "{queue_type}"
        );
    }
    // Whatever batching parameters the rules accept, the trigger is one AWS accepts.
    let mut accepted = 0;
    for (queue_type, size, window, template) in Template::load().each_batching() {
        if !template.rules_accept_defaults() {
            continue;
        }
        let context = format!("{queue_type}, QueueBatchSize {size}, window {window} s");
        let event = &template.sqs_events("QueueFunction")[0];
        let batch_size = template.number(&event["BatchSize"]);
        let window = template.optional_number(&event["MaximumBatchingWindowInSeconds"]);
        let most = if queue_type == "fifo" {
            FIFO_MAX_BATCH_SIZE
        } else {
            STANDARD_MAX_BATCH_SIZE
        };
        assert!((1..=most).contains(&batch_size), "{context}: {batch_size}");
        assert!(
            window.unwrap_or(0) <= MAX_BATCHING_WINDOW_SECONDS,
            "{context}"
        );
        assert!(
            batch_size <= MAX_BATCH_SIZE_WITHOUT_WINDOW || window >= Some(1),
            "{context}: AWS needs a window for batches over 10"
        );
        accepted += 1;
    }
    assert!(accepted > 0);
}

#[test]
fn the_batching_parameters_default_to_what_fits_6_mb_within_a_5_second_window() {
    let template = Template::load();
    let parameters = &template.0["Parameters"];
    let size = &parameters["QueueBatchSize"];
    assert_eq!(size["Type"], "Number");
    assert_eq!(template.number(&size["Default"]), STANDARD_MAX_BATCH_SIZE);
    assert_eq!(template.number(&size["MinValue"]), 1);
    assert_eq!(template.number(&size["MaxValue"]), STANDARD_MAX_BATCH_SIZE);
    let description = size["Description"].as_str().expect("a description");
    assert!(
        description.contains("6 MB") && description.contains("FIFO"),
        "QueueBatchSize says what Lambda and FIFO make of it: {description}"
    );

    let window = &parameters["QueueMaximumBatchingWindowInSeconds"];
    assert_eq!(window["Type"], "Number");
    assert_eq!(template.number(&window["Default"]), 5);
    let allowed: Vec<u64> = template
        .allowed_values("QueueMaximumBatchingWindowInSeconds")
        .iter()
        .map(|w| w.parse().expect("whole seconds"))
        .collect();
    assert_eq!(allowed.first(), Some(&0), "no window is allowed");
    assert_eq!(allowed.last(), Some(&MAX_BATCHING_WINDOW_SECONDS));
    assert!(allowed.windows(2).all(|w| w[0] < w[1]), "{allowed:?}");
    assert!(allowed.contains(&5));
    let description = window["Description"].as_str().expect("a description");
    assert!(
        description.contains("FIFO") && description.contains("ignored"),
        "{description}"
    );
}

#[test]
fn the_queue_type_is_standard_unless_fifo_is_chosen() {
    let template = Template::load();
    let parameter = &template.0["Parameters"]["QueueType"];
    assert_eq!(parameter["Type"], "String");
    assert_eq!(parameter["Default"], "standard");
    assert_eq!(template.allowed_values("QueueType"), ["standard", "fifo"]);
    assert!(!template.condition("IsFifo"), "standard by default");
    let fifo = template.with_parameters(&[("QueueType", "fifo")]);
    assert!(fifo.condition("IsFifo"));
}

#[test]
fn the_source_and_dead_letter_queues_are_both_standard_or_both_fifo() {
    for (queue_type, template) in Template::load().each_queue_type() {
        let fifo = queue_type == "fifo";
        let source = Template::target(
            &template.sqs_events("QueueFunction")[0]["Queue"],
            Some("Arn"),
        );
        let dead_letter_queue = template.dead_letter_queue();
        // SQS redrives the source queue into the queue the functions dead-letter to.
        let redrive = &template.deployed_properties(&source)["RedrivePolicy"];
        assert_eq!(
            Template::target(&redrive["deadLetterTargetArn"], Some("Arn")),
            dead_letter_queue
        );
        for id in [&source, &dead_letter_queue] {
            let properties = template.deployed_properties(id);
            let name = properties["QueueName"]["Fn::Sub"].as_str();
            if fifo {
                assert_eq!(properties["FifoQueue"], true, "{queue_type}: {id}");
                // The function sends FIFO dead letters (group and deduplication ids) when the
                // queue URL, hence the name, ends in .fifo; so the name is set, not generated.
                let name = name
                    .unwrap_or_else(|| panic!("{id}: a FIFO queue is named"))
                    .replace("${AWS::StackName}", STACK_NAME);
                assert!(name.ends_with(".fifo"), "{id}: {name}");
                assert!(name.len() <= MAX_QUEUE_NAME_LEN, "{id}: {name}");
                // Deduplicating on the body alone would drop the same event sent to two
                // destinations; senders and the function set deduplication ids.
                assert_eq!(properties["ContentBasedDeduplication"], false, "{id}");
            } else {
                // A standard queue takes none of the FIFO properties, and a generated name.
                for key in ["FifoQueue", "ContentBasedDeduplication", "QueueName"] {
                    assert!(properties[key].is_null(), "{queue_type}: {id} sets {key}");
                }
            }
        }
    }
}

#[test]
fn a_standard_trigger_takes_the_batching_parameters_and_a_fifo_one_at_most_10_without_a_window() {
    for (queue_type, size, window, template) in Template::load().each_batching() {
        let context = format!("{queue_type}, QueueBatchSize {size}, window {window} s");
        let event = &template.sqs_events("QueueFunction")[0];
        let batch_size = template.number(&event["BatchSize"]);
        let deployed_window = template.optional_number(&event["MaximumBatchingWindowInSeconds"]);
        if queue_type == "fifo" {
            // QueueBatchSize applies up to AWS's 10; the window is ignored.
            assert_eq!(batch_size, size.min(FIFO_MAX_BATCH_SIZE), "{context}");
            assert_eq!(
                deployed_window, None,
                "{context}: Lambda has no batching window for FIFO queues"
            );
        } else {
            assert_eq!(batch_size, size, "{context}");
            assert_eq!(deployed_window, Some(window), "{context}");
        }
    }
    // The defaults: as many messages as fit 6 MB, within 5 s; FIFO 10, no window.
    for (queue_type, template) in Template::load().each_queue_type() {
        let event = &template.sqs_events("QueueFunction")[0];
        let batch_size = template.number(&event["BatchSize"]);
        let window = template.optional_number(&event["MaximumBatchingWindowInSeconds"]);
        if queue_type == "fifo" {
            assert_eq!((batch_size, window), (FIFO_MAX_BATCH_SIZE, None));
        } else {
            assert_eq!((batch_size, window), (STANDARD_MAX_BATCH_SIZE, Some(5)));
        }
    }
}

#[test]
fn the_rules_refuse_exactly_a_standard_batch_over_10_without_a_window() {
    let mut refused = 0;
    for (queue_type, size, window, template) in Template::load().each_batching() {
        let needs_window = queue_type == "standard" && size > MAX_BATCH_SIZE_WITHOUT_WINDOW;
        assert_eq!(
            template.rules_accept_defaults(),
            !needs_window || window >= 1,
            "{queue_type}, QueueBatchSize {size}, window {window} s"
        );
        refused += usize::from(!template.rules_accept_defaults());
    }
    assert!(refused > 0);
    // The refusal names both parameters, so the deploy error says what to change.
    let template = Template::load();
    let rules = template.0["Rules"].as_mapping().expect("Rules is a map");
    let batching: Vec<&Value> = rules
        .values()
        .filter(|rule| {
            serde_yaml_ng::to_string(rule)
                .expect("serialises")
                .contains("QueueBatchSize")
        })
        .collect();
    assert_eq!(batching.len(), 1, "one batching rule");
    let description = batching[0]["Assertions"][0]["AssertDescription"]
        .as_str()
        .expect("the rule says why");
    for name in ["QueueBatchSize", "QueueMaximumBatchingWindowInSeconds"] {
        assert!(description.contains(name), "{description}");
    }
}

#[test]
fn the_webhook_has_a_public_function_url_and_its_own_concurrency_bound() {
    let template = Template::load();
    let webhook = template.function("WebhookFunction");
    assert_eq!(webhook["FunctionUrlConfig"]["AuthType"], "NONE");
    assert!(template.number(&webhook["ReservedConcurrentExecutions"]) >= 1);
    assert!(template.sqs_events("WebhookFunction").is_empty());
    let queue = template.function("QueueFunction");
    assert!(
        queue["FunctionUrlConfig"].is_null(),
        "the queue function has no URL"
    );
}

#[test]
fn with_the_defaults_an_account_never_sees_more_than_15_concurrent_requests() {
    let template = Template::load();
    let queue_concurrency =
        template.sqs_events("QueueFunction")[0]["ScalingConfig"]["MaximumConcurrency"].clone();
    assert!(template.number(&queue_concurrency) >= MIN_SQS_MAXIMUM_CONCURRENCY);
    let worst = template.worst_case_concurrent_requests();
    assert!(
        worst <= CLEVERTAP_MAX_CONCURRENT_REQUESTS,
        "{worst} requests in flight"
    );
    // docs/contracts.md §5: 2 x 5 for the queue; the webhook in queue mode (the default) makes
    // none, in sync mode 1 x 5.
    assert_eq!(worst, 10);
    let sync = template.with_parameters(&[("WebhookMode", "sync")]);
    assert_eq!(sync.worst_case_concurrent_requests(), 15);
    assert!(template.rules_accept_defaults());
    assert!(sync.rules_accept_defaults());
}

#[test]
fn the_rules_accept_exactly_the_concurrency_parameters_that_fit_the_clevertap_limit() {
    let template = Template::load();
    let queue = template.allowed_values("QueueMaximumConcurrency");
    let per_instance = template.allowed_values("MaxConcurrentRequests");
    let mut accepted = 0;
    for q in &queue {
        for m in &per_instance {
            let deployed = template
                .with_parameters(&[("QueueMaximumConcurrency", q), ("MaxConcurrentRequests", m)]);
            // The rules hold for either webhook mode, so switching modes never breaks them.
            let fits = template.allowed_values("WebhookMode").iter().all(|mode| {
                deployed
                    .with_parameters(&[("WebhookMode", mode)])
                    .worst_case_concurrent_requests()
                    <= CLEVERTAP_MAX_CONCURRENT_REQUESTS
            });
            assert_eq!(
                deployed.rules_accept_defaults(),
                fits,
                "QueueMaximumConcurrency {q}, MaxConcurrentRequests {m}"
            );
            accepted += usize::from(fits);
        }
    }
    assert!(accepted > 0 && accepted < queue.len() * per_instance.len());
}

#[test]
fn every_function_has_its_own_role_and_no_sam_generated_policies() {
    let template = Template::load();
    for id in template.function_ids() {
        let function = template.function(&id);
        assert!(
            function["Policies"].is_null(),
            "{id}: SAM would add a role with '*'"
        );
        let role = Template::target(&function["Role"], Some("Arn"));
        assert_eq!(template.resource(&role)["Type"], "AWS::IAM::Role");
    }
    for (id, role) in template.resources_of_type("AWS::IAM::Role") {
        let properties = &role["Properties"];
        assert!(
            properties["ManagedPolicyArns"].is_null(),
            "{id} has no managed policies"
        );
        let trust = &properties["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(trust.as_sequence().map(Vec::len), Some(1));
        assert_eq!(
            trust[0]["Principal"],
            yaml("{Service: lambda.amazonaws.com}")
        );
        assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    }
}

#[test]
fn each_role_grants_exactly_the_least_privilege_actions_and_resources() {
    let template = Template::load();
    let dead_letter_queue = template.dead_letter_queue();
    let secret = yaml(
        r#"{Fn::Sub: "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}*"}"#,
    );
    let text = |value: &Value| serde_yaml_ng::to_string(value).expect("serialises");
    for id in template.function_ids() {
        let function = template.function(&id);
        let role = template.resource(&Template::target(&function["Role"], Some("Arn")));
        let log_group = Template::target(&function["LoggingConfig"]["LogGroup"], None);

        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        let mut grant = |action: &str, resource: &Value| {
            expected.insert((action.to_owned(), text(resource)));
        };
        let own_logs = yaml(&format!("{{Fn::GetAtt: [{log_group}, Arn]}}"));
        grant("logs:CreateLogStream", &own_logs);
        grant("logs:PutLogEvents", &own_logs);
        grant("secretsmanager:GetSecretValue", &secret);
        grant(
            "sqs:SendMessage",
            &yaml(&format!("{{Fn::GetAtt: [{dead_letter_queue}, Arn]}}")),
        );
        for event in template.sqs_events(&id) {
            for action in [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                // The visibility backoff (ChangeMessageVisibilityBatch).
                "sqs:ChangeMessageVisibility",
            ] {
                grant(action, &event["Queue"]);
            }
        }
        if template.queue_mode(&id) {
            // Queue mode puts events on the stack's queue (SendMessageBatch: sqs:SendMessage).
            grant("sqs:SendMessage", &yaml("{Fn::GetAtt: [Queue, Arn]}"));
        }

        let actual = role_grants(&template, role);
        for (action, resource) in &actual {
            assert!(!action.contains('*'), "{id}: wildcard action {action}");
            let wildcard_ok = *resource == text(&secret);
            assert!(
                wildcard_ok || !resource.contains('*'),
                "{id}: wildcard {resource}"
            );
        }
        assert_eq!(actual, expected, "{id}'s role");
    }
}

#[test]
fn the_secret_resource_is_limited_to_the_secret_prefix_parameter() {
    let template = Template::load();
    assert_eq!(
        template.0["Parameters"]["SecretPrefix"]["Default"],
        "rudder-clevertap/"
    );
    for id in template.function_ids() {
        assert_eq!(
            template.env_var(&id, "SECRET_PREFIX"),
            yaml("{Ref: SecretPrefix}")
        );
    }
}

#[test]
fn an_alarm_fires_as_soon_as_a_message_is_visible_in_the_dead_letter_queue() {
    let template = Template::load();
    let dead_letter_queue = template.dead_letter_queue();
    let dimensions = yaml(&format!(
        "[{{Name: QueueName, Value: {{Fn::GetAtt: [{dead_letter_queue}, QueueName]}}}}]"
    ));
    let alarms = template.resources_of_type("AWS::CloudWatch::Alarm");
    let on_depth: Vec<&Value> = alarms
        .iter()
        .map(|(_, alarm)| &alarm["Properties"])
        .filter(|alarm| alarm["MetricName"] == "ApproximateNumberOfMessagesVisible")
        .filter(|alarm| alarm["Dimensions"] == dimensions)
        .collect();
    assert_eq!(
        on_depth.len(),
        1,
        "one alarm on the dead-letter queue's depth"
    );
    let alarm = on_depth[0];
    assert_eq!(alarm["Namespace"], "AWS/SQS");
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(template.number(&alarm["Threshold"]), 0);
    assert_eq!(template.number(&alarm["EvaluationPeriods"]), 1);
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

#[test]
fn every_function_writes_json_logs_to_its_own_log_group() {
    let template = Template::load();
    let mut groups = BTreeSet::new();
    for id in template.function_ids() {
        let logging = &template.function(&id)["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        let group = Template::target(&logging["LogGroup"], None);
        assert_eq!(template.resource(&group)["Type"], "AWS::Logs::LogGroup");
        assert!(groups.insert(group), "{id} shares a log group");
    }
}

#[test]
fn every_environment_variable_the_function_reads_is_set_and_no_test_only_one_is() {
    let template = Template::load();
    for id in template.function_ids() {
        let env = template.env(&id);
        for name in FUNCTION_ENV_VARS {
            assert!(env.contains_key(name), "{id} sets {name}");
        }
        if id == "WebhookFunction" {
            for name in WEBHOOK_ENV_VARS {
                assert!(env.contains_key(name), "{id} sets {name}");
            }
        }
        for name in TEST_ONLY_ENV_VARS {
            assert!(!env.contains_key(name), "{id} must not set {name}");
        }
        // Offline mode is declared (for `sam local invoke --env-vars`) and always off.
        assert_eq!(template.env_var(&id, "DRY_RUN"), "false", "{id}");
        assert_eq!(template.env_var(&id, "LOCAL_DESTINATIONS"), "", "{id}");
        assert!(!env.contains_key("LOCAL_DESTINATIONS_FILE"), "{id}");
        // Numeric settings parse as the binary will parse them.
        for name in [
            "MAX_CONCURRENT_REQUESTS",
            "RETRY_BUDGET_SECONDS",
            "SECRETS_TTL_SECONDS",
            "MAX_BODY_BYTES",
            "SETTINGS_CACHE_SIZE",
            "VISIBILITY_BACKOFF_BASE_SECONDS",
            "VISIBILITY_BACKOFF_CAP_SECONDS",
            "VISIBILITY_CONFIG_ERROR_SECONDS",
            "CIRCUIT_FAILURE_THRESHOLD",
            "CIRCUIT_COOLDOWN_SECONDS",
            "SECRETS_STALE_SECONDS",
        ] {
            assert!(
                template.number(&template.env_var(&id, name)) > 0,
                "{id}: {name}"
            );
        }
        // And the binary accepts every value the template sets.
        let config = rudder_clevertap::config::Config::from_lookup(|name| {
            env.get(name)
                .map(|v| template.resolve(v))
                .and_then(|v| match v {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    // A queue's `Ref` is its URL once deployed.
                    Value::Mapping(m) if m.contains_key("Ref") => {
                        Some("https://sqs.us-east-1.amazonaws.com/123456789012/stack-queue".into())
                    }
                    _ => None,
                })
        });
        assert!(config.is_ok(), "{id}: {config:?}");
    }
}

#[test]
fn the_webhook_bounds_the_items_of_a_body() {
    let template = Template::load();
    let value = template.number(&template.env_var("WebhookFunction", "MAX_ITEMS_PER_BODY"));
    assert_eq!(value, 10_000);
}

#[test]
fn the_parameters_operators_set_are_declared_with_sound_defaults() {
    let template = Template::load();
    let parameters = &template.0["Parameters"];
    assert_eq!(parameters["SecretPrefix"]["Default"], "rudder-clevertap/");
    assert_eq!(parameters["DefaultDestinationId"]["Default"], "");
    assert_eq!(
        template.number(&parameters["QueueMaximumConcurrency"]["Default"]),
        2
    );
    assert_eq!(
        template.number(&parameters["MaxConcurrentRequests"]["Default"]),
        5
    );
    assert_eq!(parameters["WebhookMode"]["Default"], "queue");
    assert_eq!(parameters["WebhookDestinationIds"]["Default"], "");
    assert!(template.number(&parameters["WebhookReservedConcurrency"]["Default"]) > 1);
    for name in [
        "MaxReceiveCount",
        "EnableWebhook",
        "LogLevel",
        "AlarmTopicArn",
        "WebhookMode",
        "WebhookReservedConcurrency",
        "WebhookDestinationIds",
    ] {
        assert!(parameters[name].is_mapping(), "parameter {name}");
    }
    // Every declared parameter is used somewhere (cfn-lint warns too, this names it).
    let text = serde_yaml_ng::to_string(&template.0["Resources"]).expect("serialises")
        + &serde_yaml_ng::to_string(&template.0["Globals"]).expect("serialises")
        + &serde_yaml_ng::to_string(&template.0["Conditions"]).expect("serialises");
    for name in parameters.as_mapping().expect("Parameters is a map").keys() {
        let name = name.as_str().expect("names are strings");
        assert!(text.contains(name), "parameter {name} is used");
    }
}

#[test]
fn the_readme_parameters_table_gives_every_parameter_with_its_default() {
    let template = Template::load();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find("\n### Parameters\n")
        .expect("a Parameters section");
    let section = &readme[start + 1..];
    let end = section[4..].find("\n### ").map_or(section.len(), |n| n + 4);
    let rows: Vec<Vec<&str>> = section[..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.split(" | ").collect())
        .collect();
    assert!(!rows.is_empty(), "the section has a table");
    let parameters = template.0["Parameters"]
        .as_mapping()
        .expect("Parameters is a map");
    for (name, parameter) in parameters {
        let name = name.as_str().expect("names are strings");
        let row = rows
            .iter()
            .find(|row| row[0].contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("README's Parameters table has no row for {name}"));
        let default = match &parameter["Default"] {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => panic!("{name}: default {other:?}"),
        };
        let documented = row[1];
        assert!(
            documented.starts_with("see ")
                || documented.starts_with(&format!("`{default}`"))
                || (default.is_empty() && documented == "empty"),
            "{name}: README says {documented:?}, the template's default is {default:?}"
        );
    }
}

#[test]
fn the_outputs_give_the_queue_the_dead_letter_queue_and_the_webhook_url() {
    let template = Template::load();
    let outputs = &template.0["Outputs"];
    let source = Template::target(
        &template.sqs_events("QueueFunction")[0]["Queue"],
        Some("Arn"),
    );
    assert_eq!(
        outputs["QueueUrl"]["Value"],
        yaml(&format!("{{Ref: {source}}}"))
    );
    let dead_letter_queue = template.dead_letter_queue();
    assert_eq!(
        outputs["DeadLetterQueueUrl"]["Value"],
        yaml(&format!("{{Ref: {dead_letter_queue}}}"))
    );
    // SAM names a function's URL resource <FunctionId>Url.
    assert_eq!(
        outputs["WebhookUrl"]["Value"],
        yaml("{Fn::GetAtt: [WebhookFunctionUrl, FunctionUrl]}")
    );
    assert_eq!(
        outputs["WebhookUrl"]["Condition"],
        template.resource("WebhookFunction")["Condition"],
        "the URL output exists exactly when the webhook does"
    );
}

#[test]
fn in_queue_mode_the_webhook_puts_events_on_the_stack_queue_with_its_concurrency_lifted() {
    let template = Template::load();
    assert!(
        template.queue_mode("WebhookFunction"),
        "queue mode is the default"
    );
    assert!(!template.queue_mode("QueueFunction"));
    let source = Template::target(
        &template.sqs_events("QueueFunction")[0]["Queue"],
        Some("Arn"),
    );
    assert_eq!(
        template.env_value("WebhookFunction", "EVENTS_QUEUE_URL"),
        Some(yaml(&format!("{{Ref: {source}}}"))),
        "the events go to the queue QueueFunction drains"
    );
    let webhook = template.function("WebhookFunction");
    let reserved = template.number(&template.resolve(&webhook["ReservedConcurrentExecutions"]));
    assert_eq!(
        reserved,
        template.number(&template.0["Parameters"]["WebhookReservedConcurrency"]["Default"])
    );
    assert!(
        reserved > 1,
        "lifted: the webhook no longer calls CleverTap"
    );
    assert!(
        template
            .env_value("WebhookFunction", "WEBHOOK_DESTINATION_IDS")
            .is_none()
    );
    assert_eq!(
        template.number(&template.env_var("WebhookFunction", "WEBHOOK_TOKEN_REFRESH_SECONDS")),
        30
    );
    for name in WEBHOOK_ENV_VARS {
        assert!(
            !template.env("QueueFunction").contains_key(name),
            "QueueFunction must not set {name}"
        );
    }

    // Sync mode: one request at a time, no queue, no permission to send to it.
    let sync = template.with_parameters(&[("WebhookMode", "sync")]);
    assert!(!sync.queue_mode("WebhookFunction"));
    let webhook = sync.function("WebhookFunction");
    assert_eq!(
        sync.number(&sync.resolve(&webhook["ReservedConcurrentExecutions"])),
        1
    );
    assert!(
        sync.env_value("WebhookFunction", "EVENTS_QUEUE_URL")
            .is_none()
    );
    let role = sync.resource("WebhookFunctionRole");
    let grants = role_grants(&sync, role);
    assert!(
        !grants.contains(&(
            "sqs:SendMessage".to_owned(),
            serde_yaml_ng::to_string(&yaml("{Fn::GetAtt: [Queue, Arn]}")).unwrap()
        )),
        "{grants:?}"
    );

    // An allowlist reaches the function only when given.
    let listed = template.with_parameters(&[("WebhookDestinationIds", "dest-a,dest-b")]);
    assert_eq!(
        listed.env_value("WebhookFunction", "WEBHOOK_DESTINATION_IDS"),
        Some(Value::String("dest-a,dest-b".into()))
    );
}

#[test]
fn the_secret_prefix_must_end_with_a_slash_so_the_iam_grant_stays_under_it() {
    let template = Template::load();
    let parameter = &template.0["Parameters"]["SecretPrefix"];
    let pattern = regex::Regex::new(parameter["AllowedPattern"].as_str().expect("a pattern"))
        .expect("the pattern compiles");
    for ok in ["rudder-clevertap/", "prod/ct/", "/", "a.b@c+d=e_f-g/"] {
        assert!(pattern.is_match(ok), "{ok} is accepted");
    }
    let too_long = format!("{}/", "a".repeat(256));
    for bad in [
        "rudder-clevertap",
        "",
        "prod/ct",
        "bad prefix/",
        too_long.as_str(),
    ] {
        assert!(!pattern.is_match(bad), "{bad:?} is refused");
    }
    assert!(pattern.is_match(parameter["Default"].as_str().unwrap()));
    assert!(parameter["ConstraintDescription"].is_string());
    // The allowlist parameter takes ids and commas only, as WEBHOOK_DESTINATION_IDS reads them.
    let ids = regex::Regex::new(
        template.0["Parameters"]["WebhookDestinationIds"]["AllowedPattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(ids.is_match("") && ids.is_match("dest-a,dest_b.2"));
    assert!(!ids.is_match("dest a") && !ids.is_match("a/b"));
}

/// The visibility schedule the template configures, as the binary reads it.
fn visibility_schedule(template: &Template) -> rudder_clevertap::visibility::Schedule {
    let env = |name: &str| template.number(&template.env_var("QueueFunction", name));
    rudder_clevertap::visibility::Schedule {
        base: env("VISIBILITY_BACKOFF_BASE_SECONDS"),
        cap: env("VISIBILITY_BACKOFF_CAP_SECONDS"),
        fixed: env("VISIBILITY_CONFIG_ERROR_SECONDS"),
    }
}

#[test]
fn a_day_long_outage_dead_letters_nothing_and_every_message_ends_inside_the_retention() {
    use rudder_clevertap::visibility::Kind;
    let template = Template::load();
    let schedule = visibility_schedule(&template);
    let timeout = template.number(&template.function("QueueFunction")["Timeout"]);
    let events = template.sqs_events("QueueFunction");
    let queue = template.resource(&Template::target(&events[0]["Queue"], Some("Arn")));
    let retention = template.number(&queue["Properties"]["MessageRetentionPeriod"]);
    assert_eq!(
        retention,
        4 * 24 * 3600,
        "the source queue keeps messages 4 days"
    );
    let count = &queue["Properties"]["RedrivePolicy"]["maxReceiveCount"];
    let parameter = &template.0["Parameters"][count["Ref"].as_str().expect("a parameter")];
    let receives = |key: &str| u32::try_from(template.number(&parameter[key])).unwrap();
    // Outlives a day of trouble at the default and at the least allowed value: each receive
    // waits at least the low end of its draw.
    for n in [receives("Default"), receives("MinValue")] {
        let least = schedule.least_coverage(n);
        assert!(
            least >= OUTAGE_SECONDS,
            "MaxReceiveCount {n}: dead-lettered after {least} s of outage"
        );
    }
    // One less than the least allowed would not: the bound is tight, not arbitrary.
    assert!(schedule.least_coverage(receives("MinValue") - 1) < OUTAGE_SECONDS);
    // Even at the largest allowed value and the high end of every draw (plus a full function
    // run per receive), a message reaches the dead-letter queue before its retention ends.
    let n = receives("MaxValue");
    let most: u64 = (1..=n)
        .map(|r| schedule.range(Kind::Backoff, r).1 + timeout)
        .sum();
    assert!(
        most + RETENTION_MARGIN_SECONDS <= retention,
        "MaxReceiveCount {n}: up to {most} s before the dead-letter queue, retention {retention} s"
    );
    // A configuration error reaches the dead-letter queue in reasonable time.
    let n = u64::from(receives("Default"));
    let fixed = (schedule.fixed + timeout) * n;
    assert!(
        fixed <= CONFIGURATION_ERROR_DEAD_LETTERED_WITHIN_SECONDS,
        "{fixed} s for a missing secret"
    );
    // SQS accepts the longest visibility: at most 12 h from the receive.
    assert!(schedule.cap + timeout <= 12 * 3600);
}

// ------------------------------------------------------------------------------ operations

/// The metrics AWS publishes that the alarms and the dashboard may name, per namespace, with
/// the one dimension they are read by (AWS/Lambda: "Monitoring Lambda function URLs" and
/// "Types of metrics for Lambda functions"; AWS/SQS: "Available CloudWatch metrics for SQS").
const AWS_METRICS: [(&str, &str, &[&str]); 2] = [
    (
        "AWS/Lambda",
        "FunctionName",
        &[
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
            "UrlRequestCount",
            "Url4xxCount",
            "Url5xxCount",
        ],
    ),
    (
        "AWS/SQS",
        "QueueName",
        &[
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
        ],
    ),
];
/// The resource type each metric dimension names.
const DIMENSION_TARGETS: [(&str, &str); 3] = [
    ("FunctionName", "AWS::Serverless::Function"),
    ("function", "AWS::Serverless::Function"),
    ("QueueName", "AWS::SQS::Queue"),
];
/// Lambda's application log levels (LoggingConfig.ApplicationLogLevel).
const LAMBDA_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// Where a metric is read from: our namespace (the `MetricsNamespace` parameter) or AWS's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Namespace {
    Own,
    Aws(String),
}

/// Checks a (namespace, metric, dimensions) a widget or alarm names: a metric the function
/// emits (`rudder_clevertap::metrics`) with dimensions it writes, or one AWS publishes with
/// the dimension AWS gives it; each dimension value names a resource of the right type.
fn check_metric(
    template: &Template,
    namespace: &Namespace,
    metric: &str,
    dimensions: &[(String, String)],
    context: &str,
) {
    match namespace {
        Namespace::Own => {
            assert!(
                rudder_clevertap::metrics::metric_names().any(|m| m == metric),
                "{context}: {metric} is not a metric metrics.rs emits"
            );
            for (name, _) in dimensions {
                assert!(
                    [
                        rudder_clevertap::metrics::FUNCTION_DIMENSION,
                        rudder_clevertap::metrics::DESTINATION_DIMENSION
                    ]
                    .contains(&name.as_str()),
                    "{context}: dimension {name} is not one metrics.rs writes"
                );
            }
        }
        Namespace::Aws(ns) => {
            let (_, dimension, metrics) = AWS_METRICS
                .iter()
                .find(|(n, _, _)| n == ns)
                .unwrap_or_else(|| panic!("{context}: namespace {ns}"));
            assert!(metrics.contains(&metric), "{context}: {ns} {metric}");
            assert!(
                dimensions.iter().all(|(name, _)| name == dimension),
                "{context}: {ns} {metric} is read by {dimension}: {dimensions:?}"
            );
        }
    }
    assert!(
        !dimensions.is_empty(),
        "{context}: {metric} has no dimension"
    );
    for (name, target) in dimensions {
        let (_, kind) = DIMENSION_TARGETS
            .iter()
            .find(|(d, _)| d == name)
            .unwrap_or_else(|| panic!("{context}: dimension {name}"));
        assert_eq!(
            template.resource(target)["Type"],
            *kind,
            "{context}: {name} = {target}"
        );
    }
}

/// The logical id a dimension value (`Ref`, `GetAtt ... QueueName`) names.
fn dimension_target(value: &Value) -> String {
    if value.get("Fn::GetAtt").is_some() {
        Template::target(value, Some("QueueName"))
    } else {
        Template::target(value, None)
    }
}

/// One alarm: (id, namespace, metric, [(dimension, target id)], properties).
type Alarm = (String, Namespace, String, Vec<(String, String)>, Value);

fn alarms(template: &Template) -> Vec<Alarm> {
    template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, alarm)| {
            let p = alarm["Properties"].clone();
            let namespace = if p["Namespace"] == yaml("{Ref: MetricsNamespace}") {
                Namespace::Own
            } else {
                Namespace::Aws(p["Namespace"].as_str().expect("a namespace").to_owned())
            };
            let dimensions = p["Dimensions"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{id} has dimensions"))
                .iter()
                .map(|d| {
                    (
                        d["Name"].as_str().expect("a dimension name").to_owned(),
                        dimension_target(&d["Value"]),
                    )
                })
                .collect();
            let metric = p["MetricName"].as_str().expect("a metric").to_owned();
            (id, namespace, metric, dimensions, p)
        })
        .collect()
}

#[test]
fn an_alarm_covers_every_failure_and_each_names_a_metric_that_exists() {
    let template = Template::load();
    let all = alarms(&template);
    let covered: BTreeSet<(Namespace, String, String)> = all
        .iter()
        .map(|(_, ns, metric, dims, _)| (ns.clone(), metric.clone(), dims[0].1.clone()))
        .collect();
    let aws = |ns: &str| Namespace::Aws(ns.to_owned());
    let dead_letter_queue = template.dead_letter_queue();
    let mut expected = vec![
        (
            aws("AWS/SQS"),
            "ApproximateNumberOfMessagesVisible",
            dead_letter_queue.as_str(),
        ),
        (aws("AWS/SQS"), "ApproximateAgeOfOldestMessage", "Queue"),
        (aws("AWS/Lambda"), "Url5xxCount", "WebhookFunction"),
    ];
    for function in ["QueueFunction", "WebhookFunction"] {
        expected.push((aws("AWS/Lambda"), "Errors", function));
        expected.push((aws("AWS/Lambda"), "Throttles", function));
        expected.push((Namespace::Own, "EventsRetried", function));
        expected.push((Namespace::Own, "CircuitOpened", function));
    }
    let expected: BTreeSet<(Namespace, String, String)> = expected
        .into_iter()
        .map(|(ns, m, t)| (ns, m.to_owned(), t.to_owned()))
        .collect();
    assert_eq!(covered, expected);
    assert_eq!(all.len(), expected.len(), "one alarm for each");

    for (id, namespace, metric, dimensions, p) in &all {
        check_metric(&template, namespace, metric, dimensions, id);
        // Webhook alarms exist only with the webhook.
        let on_webhook = dimensions.iter().any(|(_, t)| t == "WebhookFunction");
        let condition = &template.resource(id)["Condition"];
        assert_eq!(
            on_webhook,
            condition == "WebhookEnabled",
            "{id}: {condition:?}"
        );
        // Every alarm notifies the topic, when one is given, as it fires and as it clears.
        let topic =
            yaml("{Fn::If: [HasAlarmTopic, [{Ref: AlarmTopicArn}], {Ref: \"AWS::NoValue\"}]}");
        assert_eq!(p["AlarmActions"], topic, "{id}");
        assert_eq!(p["OKActions"], topic, "{id}");
        assert_eq!(p["TreatMissingData"], "notBreaching", "{id}");
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        // A threshold is a parameter with a default (or 0: any occurrence).
        if let Some(parameter) = p["Threshold"]["Ref"].as_str() {
            let declared = &template.0["Parameters"][parameter];
            assert!(declared["Default"].is_number(), "{id}: {parameter}");
            assert!(
                declared["Description"]
                    .as_str()
                    .is_some_and(|d| d.contains("5 minutes") || d.contains("older than")),
                "{id}: {parameter} says what it counts"
            );
        } else {
            assert_eq!(template.number(&p["Threshold"]), 0, "{id}");
        }
    }
}

#[test]
fn the_retried_alarms_need_sustained_retries_and_the_others_fire_at_once() {
    let template = Template::load();
    let periods = &template.0["Mappings"]["RetriedAlarmPeriods"];
    for minutes in template.allowed_values("RetriedAlarmMinutes") {
        let n = template.number(&periods[minutes.as_str()]["Periods"]);
        assert_eq!(n * 5, minutes.parse::<u64>().unwrap(), "{minutes} minutes");
    }
    let default = template.0["Parameters"]["RetriedAlarmMinutes"]["Default"]
        .as_u64()
        .expect("a number");
    assert!(
        default >= 15,
        "a blip the retries absorb must not page anyone"
    );
    for (id, _, metric, _, p) in alarms(&template) {
        assert_eq!(template.number(&p["Period"]) % 60, 0, "{id}");
        if metric == "EventsRetried" {
            let lookup =
                yaml("{Fn::FindInMap: [RetriedAlarmPeriods, {Ref: RetriedAlarmMinutes}, Periods]}");
            assert_eq!(p["EvaluationPeriods"], lookup, "{id}");
            assert_eq!(
                p["DatapointsToAlarm"], lookup,
                "{id}: every period, not some"
            );
            assert_eq!(template.number(&p["Period"]), 300, "{id}");
        } else {
            assert_eq!(template.number(&p["EvaluationPeriods"]), 1, "{id}");
        }
    }
}

/// The dashboard's body with its `Fn::Sub` variables replaced by `<Variable>`, parsed, and
/// what each variable names.
fn dashboard(
    template: &Template,
) -> (
    serde_json::Value,
    BTreeMap<String, Namespace>,
    BTreeMap<String, String>,
) {
    let dashboards = template.resources_of_type("AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard");
    let sub = dashboards[0].1["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_sequence()
        .expect("the body is Fn::Sub [text, variables]");
    let mut text = sub[0].as_str().expect("the body's text").to_owned();
    text = text.replace("${AWS::Region}", "us-east-1");
    let mut namespaces = BTreeMap::new();
    let mut targets = BTreeMap::new();
    for (name, value) in sub[1].as_mapping().expect("variables") {
        let name = name.as_str().expect("a variable name").to_owned();
        let placeholder = format!("<{name}>");
        assert!(text.contains(&format!("${{{name}}}")), "{name} is used");
        text = text.replace(&format!("${{{name}}}"), &placeholder);
        if *value == yaml("{Ref: MetricsNamespace}") {
            namespaces.insert(placeholder, Namespace::Own);
        } else {
            // A webhook name is only there with the webhook: its `Fn::If`'s first branch.
            let value = Template::fn_if(value).map_or(value, |(_, then, _)| then);
            targets.insert(placeholder, dimension_target(value));
        }
    }
    assert!(!text.contains("${"), "every variable is declared: {text}");
    let body = serde_json::from_str(&text).expect("the dashboard body is JSON");
    (body, namespaces, targets)
}

#[test]
fn the_dashboard_shows_what_an_operator_watches_and_names_only_metrics_that_exist() {
    let template = Template::load();
    let (body, namespaces, targets) = dashboard(&template);
    let widgets = body["widgets"].as_array().expect("widgets");
    let mut shown: BTreeSet<(Namespace, String, String)> = BTreeSet::new();
    let search = regex::Regex::new(
        r#"^SEARCH\('\{(<[A-Za-z]+>),function,destination\} MetricName="([A-Za-z]+)" function="(<[A-Za-z]+>)"', 'Sum', 300\)$"#,
    )
    .expect("a regex");
    for widget in widgets {
        let p = &widget["properties"];
        let title = p["title"].as_str().expect("every widget has a title");
        assert_eq!(p["region"], "us-east-1", "{title}");
        for line in p["metrics"].as_array().expect("metric widgets") {
            let line = line.as_array().expect("a metric line");
            if let Some(expression) = line[0]["expression"].as_str() {
                let c = search
                    .captures(expression)
                    .unwrap_or_else(|| panic!("{title}: {expression}"));
                assert_eq!(namespaces.get(&c[1]), Some(&Namespace::Own), "{title}");
                let dims = vec![("function".to_owned(), targets[&c[3]].clone())];
                check_metric(&template, &Namespace::Own, &c[2], &dims, title);
                continue;
            }
            let ns = line[0].as_str().expect("a namespace");
            let namespace = namespaces
                .get(ns)
                .cloned()
                .unwrap_or_else(|| Namespace::Aws(ns.to_owned()));
            let metric = line[1].as_str().expect("a metric name");
            let mut dims = Vec::new();
            let mut rest = &line[2..];
            while let [name, value, tail @ ..] = rest
                && let (Some(name), Some(value)) = (name.as_str(), value.as_str())
            {
                let target = targets
                    .get(value)
                    .unwrap_or_else(|| panic!("{title}: {value} is a variable"));
                dims.push((name.to_owned(), target.clone()));
                rest = tail;
            }
            assert!(
                rest.len() <= 1 && rest.iter().all(|o| o.is_object()),
                "{title}"
            );
            check_metric(&template, &namespace, metric, &dims, title);
            shown.insert((namespace, metric.to_owned(), dims[0].1.clone()));
        }
    }
    let aws = |ns: &str| Namespace::Aws(ns.to_owned());
    let dead_letter_queue = template.dead_letter_queue();
    let mut expected = vec![
        (
            aws("AWS/SQS"),
            "ApproximateNumberOfMessagesVisible",
            "Queue",
        ),
        (aws("AWS/SQS"), "ApproximateAgeOfOldestMessage", "Queue"),
        (
            aws("AWS/SQS"),
            "ApproximateNumberOfMessagesVisible",
            dead_letter_queue.as_str(),
        ),
        (aws("AWS/Lambda"), "UrlRequestCount", "WebhookFunction"),
        (aws("AWS/Lambda"), "Url5xxCount", "WebhookFunction"),
        (Namespace::Own, "UploadLatency", "QueueFunction"),
        (Namespace::Own, "UploadRequests", "QueueFunction"),
        (Namespace::Own, "CleverTapThrottled", "QueueFunction"),
        (Namespace::Own, "CircuitOpened", "QueueFunction"),
    ];
    for function in ["QueueFunction", "WebhookFunction"] {
        for metric in ["Duration", "Errors", "Throttles", "ConcurrentExecutions"] {
            expected.push((aws("AWS/Lambda"), metric, function));
        }
        for metric in [
            "EventsDelivered",
            "EventsFiltered",
            "EventsRejected",
            "EventsRetried",
            "ColdStart",
        ] {
            expected.push((Namespace::Own, metric, function));
        }
    }
    for (ns, metric, target) in expected {
        assert!(
            shown.contains(&(ns.clone(), metric.to_owned(), target.to_owned())),
            "the dashboard shows {ns:?} {metric} of {target}"
        );
    }
}

#[test]
fn log_level_sets_lambdas_filter_and_the_functions_own_alike() {
    let template = Template::load();
    let levels = &template.0["Mappings"]["LogLevels"];
    for level in template.allowed_values("LogLevel") {
        let lambda = levels[level.as_str()]["Lambda"].as_str().expect("mapped");
        assert_eq!(lambda, level.to_uppercase(), "{level}");
        assert!(LAMBDA_LOG_LEVELS.contains(&lambda), "{lambda}");
    }
    for id in template.function_ids() {
        let logging = &template.function(&id)["LoggingConfig"];
        assert_eq!(
            logging["ApplicationLogLevel"],
            yaml("{Fn::FindInMap: [LogLevels, {Ref: LogLevel}, Lambda]}"),
            "{id}"
        );
        assert_eq!(
            template.env_var(&id, "RUST_LOG"),
            yaml("{Ref: LogLevel}"),
            "{id}"
        );
        assert_eq!(
            template.env_var(&id, "METRICS_NAMESPACE"),
            yaml("{Ref: MetricsNamespace}"),
            "{id}: the alarms and the dashboard read the namespace the function writes"
        );
    }
}

#[test]
fn saved_queries_read_the_functions_log_groups_and_the_fields_their_lines_carry() {
    use rudder_clevertap::outcome::Status;
    let template = Template::load();
    let queries = template.resources_of_type("AWS::Logs::QueryDefinition");
    let by_id: BTreeMap<String, &Value> = queries.into_iter().collect();
    let expected = [
        ("QueryRejectedByCode", Status::Rejected.as_str()),
        ("QueryRetriesByCode", Status::Retry.as_str()),
    ];
    for (id, status) in expected {
        let p = &by_id.get(id).unwrap_or_else(|| panic!("{id}"))["Properties"];
        let q = p["QueryString"].as_str().expect("a query");
        assert!(
            q.contains(&format!("fields.status = \"{status}\"")),
            "{id}: {q}"
        );
        assert!(q.contains("fields.message = \"message\""), "{id}: {q}");
        assert!(q.contains("by fields.code"), "{id}: {q}");
    }
    let slowest = &by_id["QuerySlowestInvocations"]["Properties"];
    let q = slowest["QueryString"].as_str().expect("a query");
    assert!(q.contains("fields.message = \"invocation summary\""), "{q}");
    assert!(q.contains("sort fields.duration_ms desc"), "{q}");
    assert!(q.contains("span.xrayTraceId"), "{q}");
    for (id, query) in &by_id {
        let groups = template
            .deployed(&query["Properties"]["LogGroupNames"])
            .expect("log groups");
        for group in groups.as_sequence().expect("a list") {
            let target = Template::target(group, None);
            assert_eq!(
                template.resource(&target)["Type"],
                "AWS::Logs::LogGroup",
                "{id}"
            );
        }
    }
}

#[test]
fn the_metrics_parameters_default_to_what_the_binary_defaults_to() {
    let template = Template::load();
    let parameters = &template.0["Parameters"];
    assert_eq!(
        parameters["MetricsNamespace"]["Default"],
        rudder_clevertap::config::DEFAULT_METRICS_NAMESPACE
    );
    assert_eq!(
        parameters["MetricsPerDestination"]["Default"],
        rudder_clevertap::config::DEFAULT_METRICS_PER_DESTINATION.to_string()
    );
    // Every namespace the parameter allows is one the binary accepts.
    let pattern = regex::Regex::new(
        parameters["MetricsNamespace"]["AllowedPattern"]
            .as_str()
            .expect("a pattern"),
    )
    .expect("the pattern is a regex");
    for namespace in ["RudderCleverTap", "team/rudder-prod", "a.b_c#d:e"] {
        assert!(pattern.is_match(namespace), "{namespace}");
        let config = rudder_clevertap::config::Config::from_lookup(|name| {
            (name == "METRICS_NAMESPACE").then(|| namespace.to_owned())
        });
        assert!(config.is_ok(), "{namespace}: {config:?}");
    }
}
