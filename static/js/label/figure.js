/**
 * The task image with a box overlay. The figure keeps the image's aspect ratio and is at most
 * --label-max-h tall, so the overlay lies exactly on the picture; boxes are placed in percent of
 * the image (set through the CSSOM, which the CSP allows), so they follow any size or zoom.
 */
import { el } from "./dom.js";

/** The figure for one task item, at zoom 1: ``{ figure, image, overlay }``. */
export function imageFigure(item, alt) {
  const figure = el("div", "label-figure");
  figure.style.aspectRatio = `${item.width} / ${item.height}`;
  const image = el("img", "label-image");
  image.src = item.image_url;
  image.alt = alt;
  image.draggable = false;
  const overlay = el("div", "label-overlay");
  figure.append(image, overlay);
  setZoom(figure, item, 1);
  return { figure, image, overlay };
}

/** Width of the figure at ``zoom`` times its fitted size. */
export function setZoom(figure, item, zoom) {
  const ratio = item.width / item.height;
  figure.style.width = `calc(min(100%, var(--label-max-h) * ${ratio}) * ${zoom})`;
}

/** Position ``element`` over ``box`` = [x0, y0, x1, y1] in the item's image pixels. */
export function placeBox(element, box, item) {
  const [x0, y0, x1, y1] = box;
  element.style.left = `${(x0 / item.width) * 100}%`;
  element.style.top = `${(y0 / item.height) * 100}%`;
  element.style.width = `${((x1 - x0) / item.width) * 100}%`;
  element.style.height = `${((y1 - y0) / item.height) * 100}%`;
}

/** A read-only box outline. */
export function boxOutline(box, item) {
  const element = el("div", "label-box");
  placeBox(element, box, item);
  return element;
}
