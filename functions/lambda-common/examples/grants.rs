//! Prints, as JSON, every AWS API action each function's code can call and on which template
//! resource: `{"<function name>": [{"action", "resource"}…]}`. The least-privilege test holds
//! `template.yaml`'s policies to it.

fn main() {
    let all: serde_json::Map<String, serde_json::Value> = followup_lambda::Function::ALL
        .iter()
        .map(|f| (f.name().to_string(), serde_json::to_value(f.grants()).expect("grants are JSON")))
        .collect();
    println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
}
