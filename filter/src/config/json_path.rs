//! Field paths as errors write them: `grpc_service.initial_metadata[0].key`, and back.

/// One step of a field path: a key as written, or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path as the errors write it: `grpc_service.initial_metadata[0].key`.
pub fn render(segments: &[Segment]) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// A path as validation writes it (snake_case keys, no `.` in them) back into its steps.
pub fn parse(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            segments.push(Segment::Key(key.to_owned()));
        }
        for piece in pieces {
            match piece.trim_end_matches(']').parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                Err(_) => segments.push(Segment::Key(piece.to_owned())),
            }
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_written_and_read_back() {
        let path = vec![
            Segment::Key("grpc_service".into()),
            Segment::Key("initial_metadata".into()),
            Segment::Index(0),
            Segment::Key("key".into()),
        ];
        assert_eq!(render(&path), "grpc_service.initial_metadata[0].key");
        assert_eq!(parse("grpc_service.initial_metadata[0].key"), path);
        assert_eq!(
            parse("routes[2][1]"),
            vec![
                Segment::Key("routes".into()),
                Segment::Index(2),
                Segment::Index(1)
            ]
        );
        assert_eq!(render(&[]), "");
        assert!(parse("").is_empty());
    }
}
