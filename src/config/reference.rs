//! The settings described from their declarations: the README's configuration table, and the
//! effective configuration as TOML (`--print-config`), in the keys the file takes.

use clap::{ArgAction, ArgMatches, Command};

use super::{checks::mask, tables::FileTables};

/// Settings that are not configuration (they say what to do, not how).
fn is_setting(arg: &clap::Arg) -> bool {
    !matches!(
        arg.get_id().as_str(),
        "config" | "print_config" | "help" | "version"
    )
}

fn help(arg: &clap::Arg) -> String {
    arg.get_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .replace('\n', " ")
}

/// How the flag is written: `--listen ADDR`, `--upstream local|aws`, `--insecure-no-auth`.
fn flag(arg: &clap::Arg) -> String {
    let long = arg.get_long().unwrap_or_default();
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return format!("--{long}");
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_owned())
        .collect();
    let is_bool = arg.get_value_parser().type_id() == std::any::TypeId::of::<bool>();
    let value = if !possible.is_empty() && !is_bool {
        possible.join("\\|")
    } else {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map(|n| n.to_string())
            .unwrap_or_else(|| "VALUE".into())
    };
    format!("--{long} {value}")
}

/// The README's configuration table, one row per setting then one per file table.
pub fn markdown_table(command: &Command) -> String {
    let mut out =
        String::from("| flag | env | TOML key | default | meaning |\n|---|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let key = if is_setting(arg) {
            format!("`{id}`")
        } else {
            String::new()
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = match defaults.as_slice() {
            [] => String::new(),
            values => format!("`{}`", values.join(",")),
        };
        let secret = if arg.is_hide_env_values_set() {
            " (secret: credentials in it masked by `--print-config`)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | {env} | {key} | {default} | {}{secret} |\n",
            flag(arg),
            help(arg).replace('|', "\\|"),
        ));
    }
    for (key, meaning) in FileTables::DESCRIBED {
        out.push_str(&format!("| | | `{key}` | | {meaning} |\n"));
    }
    out
}

/// A TOML value for a setting's text, typed as the setting is: numbers and booleans bare, the rest
/// (addresses, durations, account ids with their leading zeros) quoted.
fn toml_value(arg: &clap::Arg, text: &str) -> toml::Value {
    use std::any::TypeId;
    let parser = arg.get_value_parser().type_id();
    let integer = [
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
    ]
    .iter()
    .any(|t| parser == *t);
    match () {
        _ if integer => text.parse().map(toml::Value::Integer).ok(),
        _ if parser == TypeId::of::<f64>() => text.parse().map(toml::Value::Float).ok(),
        _ if parser == TypeId::of::<bool>() => text.parse().map(toml::Value::Boolean).ok(),
        _ => None,
    }
    .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// The effective configuration (defaults included) as TOML in the file's keys, secrets masked.
pub fn effective_toml(command: &Command, matches: &ArgMatches, tables: &FileTables) -> String {
    let mut document = toml::Table::new();
    for arg in command.get_arguments().filter(|a| is_setting(a)) {
        let id = arg.get_id().as_str();
        let Some(raw) = matches.get_raw(id) else {
            continue; // unset, no default
        };
        let values: Vec<toml::Value> = raw
            .map(|v| {
                let text = v.to_string_lossy();
                if arg.is_hide_env_values_set() {
                    toml::Value::String(mask(&text))
                } else {
                    toml_value(arg, &text)
                }
            })
            .collect();
        let multiple = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
            || matches!(arg.get_action(), ArgAction::Append);
        let value = match (multiple, values.len()) {
            (false, 1) => values
                .into_iter()
                .next()
                .unwrap_or(toml::Value::Boolean(false)),
            _ => toml::Value::Array(values),
        };
        document.insert(id.to_owned(), value);
    }
    let mut out = toml::to_string(&document).unwrap_or_default();
    out.push_str(&tables.to_toml());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_values_keep_their_type() {
        assert_eq!(
            mask("redis://user:pw@10.0.0.1:6379"),
            "redis://***@10.0.0.1:6379"
        );
        assert_eq!(mask("https://collector:4317"), "https://collector:4317");
        assert_eq!(mask("hunter2"), "<redacted>");
        let command = crate::config::command();
        let arg = |id: &str| {
            command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            toml_value(&arg("max_attempts"), "3"),
            toml::Value::Integer(3)
        );
        assert_eq!(
            toml_value(&arg("read_rate"), "0.5"),
            toml::Value::Float(0.5)
        );
        assert_eq!(
            toml_value(&arg("insecure_no_auth"), "true"),
            toml::Value::Boolean(true)
        );
        assert_eq!(
            toml_value(&arg("drain_timeout"), "30s"),
            toml::Value::String("30s".into())
        );
        assert_eq!(
            toml_value(&arg("local_account_id"), "012345678901"),
            toml::Value::String("012345678901".into())
        );
    }
}
