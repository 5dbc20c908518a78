"""Package assembly: facts, documents, BagIt bag, manifest, OpenPGP stream and the background
job."""
