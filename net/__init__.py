"""Network access shared by the apps: outbound HTTP to addresses a submitter or an admin names."""
