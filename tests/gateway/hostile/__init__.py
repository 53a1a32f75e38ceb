"""The hostile-input suite (issue 14): every probe against a real gateway process."""
