"""skipnet's estimators against scikit-learn's MLPs on scikit-learn's own data sets: 5-fold
cross-validation of a StandardScaler pipeline, mean test score and mean fit time per fold.

    python bench/mlp_table.py      (needs scikit-learn)
"""

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor

MLP = {"hidden_layer_sizes": (100,), "batch_size": "auto", "max_iter": 200, "learning_rate_init": 0.001,
       "random_state": 0}


def main():
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    sets = {"diabetes": (load_diabetes(return_X_y=True), "regression"),
            "breast_cancer": (load_breast_cancer(return_X_y=True), "classification"),
            "digits": (load_digits(return_X_y=True), "classification")}
    for name, ((X, y), kind) in sets.items():
        if kind == "regression":
            cv = KFold(5, shuffle=True, random_state=0)
            ours, theirs = SkipNetRegressor, MLPRegressor(**MLP)
        else:
            cv = StratifiedKFold(5, shuffle=True, random_state=0)
            ours, theirs = SkipNetClassifier, MLPClassifier(**MLP)
        models = {"skipnet defaults": ours(random_state=0),
                  "skipnet at MLP's settings": ours(hidden_layer_sizes=(100,), skip=None, lr=0.001, epochs=200,
                                                    random_state=0),
                  type(theirs).__name__: theirs}
        for label, model in models.items():
            r = cross_validate(make_pipeline(StandardScaler(), model), X, y, cv=cv, n_jobs=1)
            print(f"| {name} | {label} | {np.mean(r['test_score']):.4f} ± {np.std(r['test_score']):.4f} | "
                  f"{np.mean(r['fit_time']):.3f} s |", flush=True)


if __name__ == "__main__":
    main()
