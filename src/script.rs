//! Running SQL text the way the shell's `-c` and `-f` do: `--var` placeholders filled, a
//! script split into statements, each statement checked, run under `--query-timeout`, and its
//! failure explained (the bad Parquet file, the `cluster` keyword).

use std::time::{Duration, Instant};

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion_cli::exec;
use datafusion_cli::print_options::PrintOptions;

use crate::SamplemixContext;

/// The deepest expression a statement may nest: DataFusion's planner and optimizer recurse
/// over expressions (a chain `1 + 1 + ...` of n terms is n deep) and take time quadratic in
/// the depth; past this a statement is refused with a clear error instead of running for
/// minutes or overflowing a stack.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Extra time a COPY gets after `--query-timeout` to remove its temporary output itself (it
/// gives up at the deadline; this only bounds the clean-up).
const COPY_CLEANUP_GRACE: Duration = Duration::from_secs(30);

/// `text` with every `${NAME}` that a `--var NAME=VALUE` sets replaced by its value (the last
/// `--var` of a name wins), and `$${` written as `${`. When `--var` was given, a `${NAME}` it
/// does not set is an error (a pipeline run with a forgotten location must not write somewhere
/// else); without any `--var` the text is left as it is (datafusion-cli scripts may contain
/// `${`). `${NAME:-DEFAULT}` (DEFAULT up to the first `}`) is always filled: the `--var`
/// value when one is given, else DEFAULT, so a script can offer a choice with its default
/// (`${embedding:-embed(text)}`). Values are pasted as text, quotes included.
pub fn substitute(text: &str, vars: &[(String, String)]) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let name = &inner[..name_len];
        let default = inner[name_len..]
            .strip_prefix(":-")
            .and_then(|d| d.find('}').map(|end| &d[..end]));
        if let (false, Some(default)) = (name.is_empty(), default) {
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, value)) => out.push_str(value),
                None => out.push_str(default),
            }
            rest = &inner[name_len + 2 + default.len() + 1..];
            continue;
        }
        if name.is_empty() || !inner[name_len..].starts_with('}') {
            out.push_str("${");
            rest = inner;
            continue;
        }
        match vars.iter().rev().find(|(k, _)| k == name) {
            Some((_, value)) => out.push_str(value),
            None if vars.is_empty() => out.push_str(&format!("${{{name}}}")),
            None => {
                return Err(DataFusionError::Configuration(format!(
                    "the SQL uses ${{{name}}}, which no --var {name}=VALUE sets (write $${{{name}}} for the text itself)"
                )))
            }
        }
        rest = &inner[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `NAME=VALUE` of `--var`.
pub fn parse_var(var: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = var
        .split_once('=')
        .ok_or_else(|| format!("--var '{var}': expected NAME=VALUE"))?;
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "--var '{var}': NAME must be letters, digits and '_', not starting with a digit"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The statements of a SQL script, split at the `;` tokens of sqlparser's tokenizer (so a `;`
/// or a `--` inside a string literal or a quoted identifier belongs to it). Statements made of
/// comments and blanks only are dropped; a leading `#!` line is ignored. Text the tokenizer
/// cannot read (an unterminated string) is passed on whole, for the parser to report.
pub fn split_statements(text: &str) -> Vec<String> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

    let text = match text.strip_prefix("#!") {
        Some(rest) => rest.split_once('\n').map_or("", |(_, body)| body),
        None => text,
    };
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, text).tokenize_with_location() else {
        return if text.trim().is_empty() {
            vec![]
        } else {
            vec![text.to_string()]
        };
    };
    // Byte offset of each line start, to turn (line, column) locations into offsets.
    let mut line_starts = vec![0usize];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get((line as usize).saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        text[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map_or(text.len(), |(i, _)| start + i)
    };
    let mut out = Vec::new();
    let (mut from, mut meaningful) = (0usize, false);
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let end = offset(t.span.start.line, t.span.start.column) + 1;
                if meaningful {
                    out.push(text[from..end].trim().to_string());
                }
                from = end;
                meaningful = false;
            }
            Token::Whitespace(
                Whitespace::Space
                | Whitespace::Newline
                | Whitespace::Tab
                | Whitespace::SingleLineComment { .. }
                | Whitespace::MultiLineComment(_),
            )
            | Token::EOF => {}
            _ => meaningful = true,
        }
    }
    if meaningful {
        out.push(text[from..].trim().to_string());
    }
    out
}

/// What the shell knows about a statement before DataFusion plans it.
struct Shape {
    /// Expression nesting depth.
    depth: usize,
    /// Whether it is a COPY (which cleans up after itself at the deadline).
    copy: bool,
    /// The locations it writes or registers, with their OPTIONS (keys lower-cased).
    locations: Vec<(String, std::collections::HashMap<String, String>)>,
}

impl Shape {
    /// The S3 settings of the statement's locations, checked before datafusion-cli builds
    /// a store from them (its own errors name an empty key, a URL parser's "invalid domain
    /// character", or an instance-metadata failure).
    fn check_s3(&self) -> Result<()> {
        for (location, options) in &self.locations {
            crate::check_s3_location(location)?;
            if !location.starts_with("s3://") {
                continue;
            }
            crate::s3::check_aws_options(options)?;
            let (id, secret) = (
                options.contains_key("aws.access_key_id"),
                options.contains_key("aws.secret_access_key"),
            );
            crate::s3::check_credentials(
                id,
                secret,
                "OPTIONS 'aws.access_key_id' / 'aws.secret_access_key'",
            )?;
        }
        Ok(())
    }
}

/// OPTIONS as text, keys lower-cased.
fn options_map(
    options: &[(String, datafusion::sql::sqlparser::ast::Value)],
) -> std::collections::HashMap<String, String> {
    options
        .iter()
        .map(|(k, v)| {
            let text = match v {
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
                other => other.to_string(),
            };
            (k.to_ascii_lowercase(), text)
        })
        .collect()
}

struct DepthVisitor {
    current: usize,
    deepest: usize,
}

impl Visitor for DepthVisitor {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> std::ops::ControlFlow<()> {
        self.current += 1;
        self.deepest = self.deepest.max(self.current);
        std::ops::ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> std::ops::ControlFlow<()> {
        self.current -= 1;
        std::ops::ControlFlow::Continue(())
    }
}

/// The statement's shape, when DataFusion's parser reads it (otherwise DataFusion reports the
/// error when it parses it again).
fn shape(sql: &str) -> Option<Shape> {
    use datafusion::sql::parser::{CopyToSource, DFParserBuilder, Statement};

    let statements = DFParserBuilder::new(sql)
        .with_recursion_limit(MAX_EXPRESSION_DEPTH)
        .build()
        .ok()?
        .parse_statements()
        .ok()?;
    let mut visitor = DepthVisitor {
        current: 0,
        deepest: 0,
    };
    let mut copy = false;
    let mut locations = Vec::new();
    for statement in &statements {
        let mut statement = statement;
        while let Statement::Explain(explain) = statement {
            statement = &explain.statement;
        }
        match statement {
            Statement::Statement(s) => {
                let _ = s.visit(&mut visitor);
            }
            Statement::CopyTo(c) => {
                copy = true;
                locations.push((c.target.clone(), options_map(&c.options)));
                if let CopyToSource::Query(q) = &c.source {
                    let _ = q.visit(&mut visitor);
                }
            }
            Statement::CreateExternalTable(c) => {
                let options = options_map(&c.options);
                locations.extend(c.locations.iter().map(|l| (l.clone(), options.clone())));
            }
            _ => {}
        }
    }
    Some(Shape {
        depth: visitor.deepest,
        copy,
        locations,
    })
}

/// Run one statement: refused when nested deeper than [`MAX_EXPRESSION_DEPTH`]; failed when
/// it takes longer than `limit` (planning-time work included: table functions and COPY read
/// the session's deadline); a panic inside a library turned into an error; the bad file named
/// when it failed reading Parquet.
pub async fn run_statement(
    ctx: &SamplemixContext,
    sql: &str,
    limit: Option<Duration>,
    print_options: &PrintOptions,
) -> Result<()> {
    use futures::FutureExt;

    let shape = shape(sql);
    if let Some(s) = &shape {
        if s.depth > MAX_EXPRESSION_DEPTH {
            return Err(DataFusionError::Plan(format!(
                "the statement nests expressions {} deep (e.g. a chain of {} terms); the limit is {MAX_EXPRESSION_DEPTH}: split it, or sum the terms with an aggregate over a table",
                s.depth, s.depth
            )));
        }
        s.check_s3()?;
    }
    let deadline = ctx.deadline();
    deadline.set(limit.map(|l| Instant::now() + l));
    let run = std::panic::AssertUnwindSafe(exec::exec_from_commands(
        ctx,
        vec![sql.to_string()],
        print_options,
    ))
    .catch_unwind()
    .map(|r| {
        r.unwrap_or_else(|_| {
            Err(DataFusionError::Execution(format!(
                "a library panicked while running the statement: {}",
                crate::panics::last_message()
            )))
        })
    });
    let outer = limit.map(|l| {
        if shape.as_ref().is_some_and(|s| s.copy) {
            l + COPY_CLEANUP_GRACE
        } else {
            l
        }
    });
    let result = match outer {
        None => run.await,
        Some(outer) => tokio::time::timeout(outer, run).await.unwrap_or_else(|_| {
            Err(DataFusionError::Execution(format!(
                "the statement ran longer than --query-timeout {} s and was abandoned",
                limit.unwrap_or_default().as_secs_f64()
            )))
        }),
    };
    deadline.set(None);
    let Err(e) = result else { return Ok(()) };
    let e = crate::panics::with_message(e);
    let message = e.to_string();
    if crate::is_parquet_failure(&e) || message.contains("panicked") {
        if let Some(bad) = crate::find_corrupt_parquet(ctx.inner(), sql).await {
            return Err(e.context(bad));
        }
    }
    if let Some(bad) = crate::diagnose::bad_s3_location(sql) {
        return Err(e.context(bad));
    }
    if let Some(hint) = crate::subquery_hint(&message) {
        return Err(e.context(hint));
    }
    if let Some(hint) = crate::parser_hint(&e) {
        return Err(e.context(hint));
    }
    Err(e)
}

/// Run a SQL file statement by statement, stopping at the first failure so that a script's
/// exit code tells whether all of it ran (datafusion-cli prints the error and goes on).
pub async fn exec_file(
    ctx: &SamplemixContext,
    path: &str,
    vars: &[(String, String)],
    limit: Option<Duration>,
    print_options: &PrintOptions,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataFusionError::Execution(format!("cannot read SQL file '{path}': {e}")))?;
    let text = substitute(&text, vars).map_err(|e| e.context(format!("in {path}")))?;
    for sql in split_statements(&text) {
        run_statement(ctx, &sql, limit, print_options)
            .await
            .map_err(|e| e.context(format!("in {path}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_refused_or_kept() {
        let vars = vec![
            ("work".to_string(), "s3://b/run/".to_string()),
            ("k".to_string(), "8".to_string()),
            ("k".to_string(), "16".to_string()),
        ];
        assert_eq!(
            substitute("COPY t TO '${work}docs/' -- k=${k}", &vars).unwrap(),
            "COPY t TO 's3://b/run/docs/' -- k=16"
        );
        // Not placeholders: no name, no closing brace, a `$` alone; `$${` is the escape.
        assert_eq!(
            substitute("'${}' ${ x} $1 ${a $${k} $$x", &vars).unwrap(),
            "'${}' ${ x} $1 ${a ${k} $$x"
        );
        let err = substitute("LOCATION '${input}'", &vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("${input}") && err.contains("--var input=VALUE"),
            "{err}"
        );
        // Without any --var, datafusion-cli scripts pass through unchanged (but the escape).
        assert_eq!(
            substitute("SELECT '${HOME}' -- ${x}", &[]).unwrap(),
            "SELECT '${HOME}' -- ${x}"
        );
        assert_eq!(substitute("'$${x}'", &[]).unwrap(), "'${x}'");
        // A default fills the placeholder with or without --var; a --var value replaces it.
        let choice = "SELECT ${embedding:-embed(text)} AS emb";
        assert_eq!(
            substitute(choice, &[]).unwrap(),
            "SELECT embed(text) AS emb"
        );
        assert_eq!(
            substitute(choice, &vars).unwrap(),
            "SELECT embed(text) AS emb"
        );
        let model = [("embedding".to_string(), "embed(text, 'm/')".to_string())];
        assert_eq!(
            substitute(choice, &model).unwrap(),
            "SELECT embed(text, 'm/') AS emb"
        );
        assert_eq!(substitute("${x:-}|", &[]).unwrap(), "|");
    }

    #[test]
    fn statements_split_at_semicolon_tokens_only() {
        let script = "#!/usr/bin/env samplemix\n-- a comment; with a semicolon\nSELECT 'a;\n-- not a comment\nb' AS x;\nSELECT \"odd;name\" FROM t; /* c; */\n  \n-- trailing comment\nSELECT 3";
        assert_eq!(
            split_statements(script),
            vec![
                "-- a comment; with a semicolon\nSELECT 'a;\n-- not a comment\nb' AS x;",
                "SELECT \"odd;name\" FROM t;",
                "/* c; */\n  \n-- trailing comment\nSELECT 3",
            ]
        );
        assert!(split_statements("-- only a comment\n;\n").is_empty());
        assert_eq!(
            split_statements("SELECT 'unterminated"),
            vec!["SELECT 'unterminated"]
        );
        assert_eq!(
            split_statements("SELECT 'é;ü', 2; SELECT 1"),
            vec!["SELECT 'é;ü', 2;", "SELECT 1"]
        );
    }

    #[test]
    fn depth_and_kind_of_statements() {
        let chain = format!("SELECT {}", vec!["1"; 50].join(" + "));
        let s = shape(&chain).unwrap();
        assert!(s.depth >= 49 && !s.copy, "{}", s.depth);
        assert!(shape("COPY (SELECT 1) TO 'x.parquet'").unwrap().copy);
        assert!(shape("SELECT 1 +").is_none());
    }
}
