"""``hwnas dashboard``: a read-only web view of a lab's store (fleet, campaigns, dataset), served offline."""
