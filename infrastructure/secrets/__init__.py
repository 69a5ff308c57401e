"""The secret box adapter: vault credentials sealed with AES-GCM."""
