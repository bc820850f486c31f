//! Sizes on the command line ("512M", "1G", "64MiB"), read as `lego-vmm`
//! reads them (binary units), so that `lego up` refuses a typo before it
//! starts anything.

/// Bytes in `text`: a number with an optional K, M, G or T (binary units,
/// "KiB"/"KB"/"k" spellings accepted), or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|e| format!("{text:?} is not a size ({e}): write e.g. 512M, 1G or 65536"))?;
    if bytes == 0 {
        return Err(format!("{text:?} is no bytes at all"));
    }
    Ok(bytes)
}

/// For clap: checks the size and keeps the user's spelling (it is passed
/// on to `lego-vmm` as written).
pub fn size_arg(text: &str) -> Result<String, String> {
    parse_size(text).map(|_| text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "1X", "-1G", "0", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
