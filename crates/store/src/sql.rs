//! Small pieces of SQL text shared by the table modules: id lists, LIKE patterns and
//! placeholder lists. None of them ever holds user text unescaped.

/// `IN (…)` of ids known to be integers (never user text).
pub(crate) fn id_list<Id: std::fmt::Display>(ids: &[Id]) -> String {
    if ids.is_empty() {
        return "(NULL)".into();
    }
    let list: Vec<String> = ids.iter().map(Id::to_string).collect();
    format!("({})", list.join(","))
}

/// `%text%` for LIKE, with the wildcards in `text` escaped (`ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `?, ?, …` for `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn id_lists_never_empty_sql() {
        assert_eq!(id_list::<i64>(&[]), "(NULL)");
        assert_eq!(id_list(&[3, 7]), "(3,7)");
    }

    #[test]
    fn placeholders_count() {
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
