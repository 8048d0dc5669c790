// InterStable LLM R-Line: tooltips for the script's controls and buttons. Everything sits in one closure: no globals.
// The map is generated from interstable/args.py (tests/unit/test_assets.py keeps them equal).
(function () {
  const interstableTooltips = {
      line_density: "Lines per 512x512 of area; the same density looks the same at any resolution. 0 draws no lines.",
      line_width_min: "Thinnest line, in pixels at a 512 px short side (scaled with the image).",
      line_width_max: "Thickest line, in pixels at a 512 px short side (scaled with the image).",
      line_opacity: "How opaque each line is.",
      line_color: "Random colours, colours sampled from the image, black, white, or the complement of what lies under the line.",
      line_style: "Straight segments, polylines or smooth curves.",
      line_region: "Auto draws only inside the inpaint mask when inpainting, else everywhere.",
      lines_as_mask: "Use the stroke mask as the inpaint mask, so Stable Diffusion changes only what the lines touched.",
      show_lined: "Also return the init image with the lines, before sampling.",
      caption_backend: "Who describes the image for the LLM. Vision LLM: a GGUF vision model and its mmproj from the LLM models folder. WD tagger: Danbooru tags (anime, Pony, Illustrious). None: your prompt is the LLM's only input. Vision LLM writes the prompt: one model, no caption; the vision model looks at the image and writes the prompt itself (the LLM model is not used).",
      caption_mode: "Only for CLIP Interrogator. Best is slow (several seconds per image even on a GPU).",
      caption_model: "Only for CLIP Interrogator: the model that writes the caption.",
      clip_model: "Only for CLIP Interrogator: an OpenCLIP model/pretrained name such as ViT-L-14/openai.",
      caption_source: "Caption the original image or the image with the lines.",
      llm_model: "A GGUF file from the LLM models folder; (default) uses the model chosen in Settings; (none) skips the LLM.",
      instruction: "What the LLM should do with the caption; empty uses the default from Settings.",
      user_prompt_order: "Where your own prompt (kept exactly as you wrote it) goes relative to the LLM's text.",
      creativity: "How freely the LLM invents (temperature and top-p).",
      faithfulness: "How closely the LLM keeps to the caption's subject.",
      token_budget: "The LLM text is cut at a phrase boundary to fit this many CLIP tokens.",
      prompt_per: "Write a prompt for each image, or one prompt shared by each batch.",
      describe_lines: "Mention the drawn lines (count, colours, style) to the LLM.",
      steps: "Sampling steps for this script's runs; 0 keeps the img2img tab's value.",
      max_tokens: "Upper bound on what the LLM may generate.",
      use_raw: "Use the four settings below instead of Creativity.",
      temperature: "LLM temperature (with raw sampling).",
      top_p: "LLM nucleus sampling (with raw sampling).",
      top_k: "LLM top-k; 0 disables it (with raw sampling).",
      repeat_penalty: "Penalty on repeated tokens (with raw sampling).",
      vision_model: "Only for the Vision LLM interrogators: \"MODEL.gguf + MMPROJ.gguf\" from the LLM models folder; empty takes the first pair.",
      tagger_model: "Only for WD tagger: a folder in models/wd-tagger holding model.onnx and selected_tags.csv; empty takes wd-vit-tagger-v3 or the first one.",
      tagger_general_threshold: "Only for WD tagger: lowest probability of a general tag.",
      tagger_character_threshold: "Only for WD tagger: lowest probability of a character tag.",
      tagger_ratings: "Only for WD tagger: put the rating tag (general, sensitive, questionable, explicit) first.",
      tagger_underscores: "Only for WD tagger: long_hair instead of long hair (some anime checkpoints were trained that way).",
      prompt_style: "How the LLM writes: tags (SD1.5, SDXL), Danbooru tags (anime; Pony adds its score_9, score_8_up... tags), or sentences without weights (Flux, SD3). Auto picks from the loaded checkpoint; the infotext records the style used.",
      preview: "Draw the lines, caption the image and write the prompt for the img2img tab's image and seed, without sampling.",
      copy: "Put the final prompt of the last job or preview into the img2img prompt box.",
      preset: "Fill the Instruction box with a preset; edit it freely afterwards.",
      refresh: "List the .gguf files in the LLM models folder again.",
      download: "Download Mistral 7B Instruct v0.2 Q4_K_M (4.4 GB) into the LLM models folder; resumable, checked by SHA-256.",
      vision_download: "Download Qwen2.5-VL-3B-Instruct Q4_K_M and its mmproj (about 2.7 GB) into the LLM models folder; resumable.",
      tagger_download: "Download SmilingWolf's wd-vit-tagger-v3 (about 380 MB) into models/wd-tagger; resumable.",
  };

  function applyInterstableTooltips() {
    const app = gradioApp();
    for (const [key, text] of Object.entries(interstableTooltips)) {
      const root = app.querySelector("#script_interstable_llm_rline_" + key);
      if (!root) continue;
      root.title = text;
      root.querySelectorAll("input, textarea, select, label").forEach(function (el) {
        el.title = text;
      });
    }
  }

  onUiLoaded(applyInterstableTooltips);
})();
