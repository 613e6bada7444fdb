"""Bulk imports: CRM contacts, orders and catalog files read in chunks, mapped to
Segment calls, validated per row (docs/import-export.md). Pure logic: the file
arrives as a binary stream, batches leave through a `send` callable."""
