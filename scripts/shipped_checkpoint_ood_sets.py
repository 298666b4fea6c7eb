"""Fresh OC-EMT systems split by whether the shipped checkpoint's training set saw them.

The shipped checkpoint was trained on `datagen oc-emt --systems 80 --seed 0` (simple
placement, val fraction 0.1). Systems of seed 1234 whose adsorbate never occurs in those
training systems form val-OOD-ads; whose catalyst (metal+facet) never occurs, val-OOD-cat;
the rest val-ID. Writes val_id.extxyz / val_ood_ads.extxyz (/ val_ood_cat.extxyz) into the
current directory; then

    equicat evaluate --checkpoint oc-emt-eqv2-s --data val_id.extxyz val_ood_ads.extxyz \
        --task s2ef --out eval
"""

import ase.io

from equicat.data.oc_emt import Recipe, generate_system, load_adsorbates, sample_info
from equicat.data.oc_emt_splits import Holdout, split_systems

ads = load_adsorbates()
infos = {i: sample_info(i, 0, ads) for i in range(80)}
train = split_systems(infos, 0, 0.1, Holdout())["train"]
seen_ads = {infos[i]["adsorbate"] for i in train}
seen_cat = {infos[i]["metal"] + infos[i]["facet"] for i in train}
print(
    f"training systems {len(train)}; adsorbates seen {len(seen_ads)} of {len(ads)}; "
    f"catalysts seen {len(seen_cat)} of 14"
)
groups = {"id": [], "ood_ads": [], "ood_cat": []}
i = 0
while min(len(groups["id"]), len(groups["ood_ads"])) < 12 and i < 400:
    info = sample_info(i, 1234, ads)
    a_new = info["adsorbate"] not in seen_ads
    c_new = info["metal"] + info["facet"] not in seen_cat
    key = {(False, False): "id", (True, False): "ood_ads", (False, True): "ood_cat"}.get(
        (a_new, c_new)
    )
    if key and len(groups[key]) < 12:
        groups[key].append(i)
    i += 1
for key, ids in groups.items():
    frames = []
    for j in ids:
        frames += generate_system(j, 1234, None, Recipe())
    if frames:
        ase.io.write(f"val_{key}.extxyz", frames)
    print(key, len(ids), "systems", len(frames), "frames")
