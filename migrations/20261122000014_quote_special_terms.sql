-- Non-standard terms agreed on a quote (payment, liability, ...): free text for the approvers; a
-- quote with any needs the approval levels the policy gives non-standard terms.
ALTER TABLE quote ADD COLUMN special_terms text;
