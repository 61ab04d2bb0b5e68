//! Request sizes and splitting a field list that would make the request too long.

/// The length of `s` form-encoded as a query value (as the session sends it): alphanumerics and
/// `*-._` stay, a space becomes `+`, every other byte becomes `%XX`.
pub(crate) fn form_encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// What a query request costs in bytes, besides its SOQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestBudget {
    /// The instance URL, the versioned data path, `/`, the endpoint and `?q=`.
    pub prefix: usize,
    /// Bytes reserved for the request line's remainder and every header.
    pub header_allowance: usize,
    /// The most bytes URI and headers may take.
    pub max: usize,
}

impl RequestBudget {
    pub fn new(
        instance_url: &str,
        data_path: &str,
        endpoint: &str,
        header_allowance: usize,
        max: usize,
    ) -> RequestBudget {
        RequestBudget {
            prefix: instance_url.len() + data_path.len() + 1 + endpoint.len() + "?q=".len(),
            header_allowance,
            max,
        }
    }

    /// The estimated bytes of URI and headers for a query with this SOQL.
    pub fn request_bytes(&self, soql: &str) -> usize {
        self.prefix + form_encoded_len(soql) + self.header_allowance
    }

    /// True when a query with this SOQL fits.
    pub fn fits(&self, soql: &str) -> bool {
        self.request_bytes(soql) <= self.max
    }
}

/// Splits `fields` (indices into `names`) into chunks that each start with the `Id` field and fit
/// in `max` bytes, where a chunk holding only `Id` costs `base` bytes and every further field its
/// encoded name plus an encoded comma. Greedy in the given order, so neighbouring fields stay
/// together. Fails with the name of a field that does not fit even alone with `Id`.
pub(crate) fn split_fields(
    names: &[String],
    id: usize,
    base: usize,
    max: usize,
) -> Result<Vec<Vec<usize>>, String> {
    let comma = form_encoded_len(",");
    let mut chunks = Vec::new();
    let mut current = vec![id];
    let mut size = base;
    for (i, name) in names.iter().enumerate() {
        if i == id {
            continue;
        }
        let cost = form_encoded_len(name) + comma;
        if size + cost > max {
            if current.len() == 1 || base + cost > max {
                return Err(name.clone());
            }
            chunks.push(std::mem::replace(&mut current, vec![id]));
            size = base;
        }
        current.push(i);
        size += cost;
    }
    chunks.push(current);
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoded_lengths_match_form_encoding() {
        assert_eq!(form_encoded_len("SELECT Id FROM Account"), 22);
        assert_eq!(form_encoded_len("Id,Name"), 9);
        assert_eq!(form_encoded_len("x >= 2024-01-01T00:00:00+00:00"), 42);
        assert_eq!(form_encoded_len("'é'"), 12);
    }

    #[test]
    fn splitting_keeps_id_in_every_chunk() {
        let names: Vec<String> = ["Id", "Aaaa", "Bbbb", "Cccc", "Dddd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Id alone costs 10; each field costs 7; max 24 fits two fields per chunk.
        let chunks = split_fields(&names, 0, 10, 24).unwrap();
        assert_eq!(chunks, vec![vec![0, 1, 2], vec![0, 3, 4]]);
        let err = split_fields(&names, 0, 20, 24).unwrap_err();
        assert_eq!(err, "Aaaa");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_field_lands_in_exactly_one_chunk_under_the_limit(
            lens in proptest::collection::vec(1usize..40, 1..300),
            base in 20usize..200,
            extra in 50usize..2000,
        ) {
            let mut names = vec!["Id".to_string()];
            names.extend(lens.iter().enumerate().map(|(i, n)| format!("F{i}_{}", "x".repeat(*n))));
            let max = base + 3 + 45 + extra;
            let chunks = split_fields(&names, 0, base, max).unwrap();
            let mut seen = vec![0usize; names.len()];
            for chunk in &chunks {
                prop_assert_eq!(chunk[0], 0);
                let size: usize = base + chunk[1..].iter().map(|&i| form_encoded_len(&names[i]) + 3).sum::<usize>();
                prop_assert!(size <= max);
                for &i in chunk { seen[i] += 1; }
            }
            prop_assert_eq!(seen[0], chunks.len());
            prop_assert!(seen[1..].iter().all(|&n| n == 1));
        }
    }
}
