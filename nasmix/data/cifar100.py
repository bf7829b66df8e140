"""CIFAR-100 (Krizhevsky, 2009), fine labels: python batches or an image folder."""

from __future__ import annotations

from nasmix import registry
from nasmix.data.cifar10 import Cifar10

_FINE = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel "
    "can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur "
    "dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion "
    "lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree "
    "pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea "
    "seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table "
    "tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman "
    "worm"
)


@registry.register("dataset", "cifar100")
class Cifar100(Cifar10):
    """CIFAR-100: 50,000 + 10,000 32x32 colour images in 100 fine classes."""

    classes = tuple(_FINE.split())
    folder = "cifar-100-python"
    archive = "cifar-100-python.tar.gz"
    train_files = ("train",)
    test_files = ("test",)
    label_key = "fine_labels"
    torchvision_name = "CIFAR100"
