//! Presenting results: aligned text, CSV and Markdown tables (`table`), one-line CSV rows
//! (`csvline`), and the figures (`plot`).
pub mod boxes;
pub mod csvline;
pub mod plot;
pub mod table;
