//! Source precedence between devices reporting the same quantity (issue 4).
